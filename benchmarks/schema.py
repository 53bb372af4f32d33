"""Validators of the benchmark's JSON files (plain Python, no schema library).

Each ``validate_*`` returns a list of problems (empty when valid). Besides the required keys and types,
every number anywhere in the file must be a real, finite number; ``null`` is allowed only under the
keys in `NULLABLE` (a standard deviation of a single seed, a wheel that was not built, ...).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, List

# The schema id of each JSON file the harness writes (its "schema" key); the writers import them from here.
CELL_SCHEMA = "spacy-compact-ner/benchmark-cell/v1"
SPEED_SCHEMA = "spacy-compact-ner/benchmark-speed/v1"
BENCHMARK_SCHEMA = "spacy-compact-ner/benchmark/v1"
VARIANT_SCHEMA = "spacy-compact-ner/variant-run/v1"
VARIANT_SPEED_SCHEMA = "spacy-compact-ner/variant-speed/v1"

NULLABLE = {
    "interval",  # a margin without per-doc counts in its cells
    "std",  # one seed: no spread
    "dev_f1",  # no seed of the (size, system) recorded its dev scores
    "torch_threads",  # torch not loaded
    "wheel",
    "wheel_bytes",  # no wheel built
    "spacy_benchmark_speed",  # disabled
    "pipeline_words_per_second",
    "ner_words_per_second",  # a mode not measured
    "memory_bytes",
    "threadpools",
    "sha256",
    "stopped_by",
    "speed",  # the report before any speed run
    "plot",
    "n_words",
    "ratio",
    "difference",
    "dev_difference",  # a variant comparison whose seeds recorded no dev scores
}
TARGET_STATUSES = ("met", "not met", "missing data")


def number_problems(data: Any, path: str = "$") -> List[str]:
    """Numbers that are not finite, booleans where numbers belong, and nulls outside `NULLABLE`."""
    problems: List[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}"
            if value is None:
                if key not in NULLABLE and not key.startswith("_"):
                    problems.append(f"{where}: null")
            else:
                problems += number_problems(value, where)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if value is None:
                problems.append(f"{path}[{i}]: null")
            else:
                problems += number_problems(value, f"{path}[{i}]")
    elif isinstance(data, float) and not math.isfinite(data):
        problems.append(f"{path}: {data} is not a finite number")
    return problems


def _require(data: dict, keys: Iterable[str], where: str, types: Any = None) -> List[str]:
    problems = []
    for key in keys:
        if key not in data:
            problems.append(f"{where}: missing key {key!r}")
        elif types is not None and data[key] is not None and not isinstance(data[key], types):
            problems.append(f"{where}.{key}: expected {types}, got {type(data[key]).__name__}")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_cell(data: Any) -> List[str]:
    """One result file ``metrics/benchmark/<dataset>/n<size>-s<seed>/<system>.json``."""
    if not isinstance(data, dict):
        return ["$: not an object"]
    problems = []
    if data.get("schema") != CELL_SCHEMA:
        problems.append(f"$.schema: expected {CELL_SCHEMA!r}, got {data.get('schema')!r}")
    problems += _require(data, ("dataset", "system", "date", "model", "train_data", "test_sha256"), "$", str)
    problems += _require(data, ("seed", "n_labeled", "n_unlabeled", "n_test"), "$", int)
    problems += _require(data, ("scores", "machine", "config", "upstream_seconds"), "$", dict)
    if "size" not in data or not (data["size"] == "all" or (isinstance(data["size"], int) and data["size"] > 0)):
        problems.append("$.size: expected a positive integer or 'all'")
    if not _is_number(data.get("train_seconds")) or data.get("train_seconds", -1) < 0:
        problems.append("$.train_seconds: expected a number >= 0")
    scores = data.get("scores") if isinstance(data.get("scores"), dict) else {}
    for key in ("ents_f", "ents_p", "ents_r"):
        value = scores.get(key)
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            problems.append(f"$.scores.{key}: expected a number in [0, 1], got {value!r}")
    dev = data.get("dev_scores", {})  # optional: results written before it was recorded lack it
    if not isinstance(dev, dict):
        problems.append("$.dev_scores: expected an object")
    else:
        for key, value in dev.items():
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                problems.append(f"$.dev_scores.{key}: expected a number in [0, 1], got {value!r}")
    counts = data.get("test_doc_counts")  # optional: results written before it was recorded lack it
    if counts is not None:
        if not isinstance(counts, list) or len(counts) != data.get("n_test"):
            problems.append("$.test_doc_counts: expected one [tp, fp, fn] per test doc")
        elif not all(
            isinstance(c, str) and len(c.split()) == 3 and all(n.isdigit() for n in c.split()) for c in counts
        ):
            problems.append('$.test_doc_counts: expected "tp fp fn" strings of counts >= 0')
    per_type = scores.get("ents_per_type")
    if not isinstance(per_type, dict):
        problems.append("$.scores.ents_per_type: expected an object")
    else:
        for label, prf in per_type.items():
            if not isinstance(prf, dict) or not all(_is_number(prf.get(k)) for k in ("p", "r", "f")):
                problems.append(f"$.scores.ents_per_type.{label}: expected numbers p, r, f")
    return problems + number_problems(data)


def _validate_stat(stat: Any, where: str) -> List[str]:
    if not isinstance(stat, dict):
        return [f"{where}: expected an object"]
    problems = []
    if not _is_number(stat.get("mean")):
        problems.append(f"{where}.mean: expected a number")
    n = stat.get("n")
    if not isinstance(n, int) or n < 1:
        problems.append(f"{where}.n: expected an integer >= 1")
    std = stat.get("std")
    if std is None:
        if isinstance(n, int) and n >= 2:
            problems.append(f"{where}.std: null with n={n}")
    elif not _is_number(std):
        problems.append(f"{where}.std: expected a number")
    if not isinstance(stat.get("values"), list) or (isinstance(n, int) and len(stat["values"]) != n):
        problems.append(f"{where}.values: expected n values")
    return problems


def validate_targets(targets: Any, where: str) -> List[str]:
    if not isinstance(targets, list):
        return [f"{where}: expected a list"]
    problems = []
    for i, target in enumerate(targets):
        w = f"{where}[{i}]"
        if not isinstance(target, dict):
            problems.append(f"{w}: expected an object")
            continue
        problems += _require(target, ("id", "description", "status", "detail"), w, str)
        if target.get("status") not in TARGET_STATUSES:
            problems.append(f"{w}.status: expected one of {TARGET_STATUSES}, got {target.get('status')!r}")
        if not isinstance(target.get("measured"), dict):
            problems.append(f"{w}.measured: expected an object")
    return problems


def validate_benchmark(data: Any) -> List[str]:
    """``metrics/benchmark.json`` written by the report."""
    if not isinstance(data, dict):
        return ["$: not an object"]
    problems = []
    if data.get("schema") != BENCHMARK_SCHEMA:
        problems.append(f"$.schema: expected {BENCHMARK_SCHEMA!r}")
    problems += _require(data, ("date", "accuracy", "targets", "machine", "cells"), "$")
    for name, dataset in (data.get("accuracy") or {}).items():
        w = f"$.accuracy.{name}"
        if not isinstance(dataset, dict):
            problems.append(f"{w}: expected an object")
            continue
        problems += _require(dataset, ("results", "missing", "sizes", "seeds", "systems", "per_type"), w)
        for i, row in enumerate(dataset.get("results", [])):
            rw = f"{w}.results[{i}]"
            problems += _require(row, ("size", "n_labeled", "system", "n_seeds", "seeds"), rw)
            for key in ("f1", "precision", "recall", "train_seconds"):
                problems += _validate_stat(row.get(key), f"{rw}.{key}")
            if row.get("dev_f1") is not None:
                problems += _validate_stat(row["dev_f1"], f"{rw}.dev_f1")
        per_type = dataset.get("per_type") or {}
        for system, labels in (per_type.get("systems") or {}).items():
            for label, stat in labels.items():
                problems += _validate_stat(stat, f"{w}.per_type.systems.{system}.{label}")
    problems += validate_targets(data.get("targets"), "$.targets")
    if data.get("speed") is not None:
        problems += validate_speed(data["speed"], where="$.speed")
    return problems + number_problems(data)


def validate_speed(data: Any, where: str = "$") -> List[str]:
    """``metrics/benchmark_speed.json`` written by the speed benchmark."""
    if not isinstance(data, dict):
        return [f"{where}: not an object"]
    problems = []
    if data.get("schema") != SPEED_SCHEMA:
        problems.append(f"{where}.schema: expected {SPEED_SCHEMA!r}")
    problems += _require(data, ("date", "machine", "settings", "text", "systems", "targets"), where)
    text = data.get("text") or {}
    if not isinstance(text.get("n_words"), int) or text.get("n_words", 0) <= 0:
        problems.append(f"{where}.text.n_words: expected a positive integer")
    for name, system in (data.get("systems") or {}).items():
        w = f"{where}.systems.{name}"
        for key in ("parameters", "ner_parameters", "disk_bytes"):
            if not isinstance(system.get(key), int) or system[key] < 0:
                problems.append(f"{w}.{key}: expected an integer >= 0")
        threads = system.get("threads")
        if not isinstance(threads, dict) or not threads:
            problems.append(f"{w}.threads: expected measurements")
            continue
        for key, run in threads.items():
            rw = f"{w}.threads.{key}"
            measured = [run.get("pipeline_words_per_second"), run.get("ner_words_per_second")]
            if not any(_is_number(v) and v > 0 for v in measured):
                problems.append(f"{rw}: no positive words/s")
            if not isinstance(run.get("peak_rss_bytes"), int) or run["peak_rss_bytes"] <= 0:
                problems.append(f"{rw}.peak_rss_bytes: expected a positive integer")
        for kind in ("input_words", "doc_length"):
            for i, entry in enumerate((system.get("scaling") or {}).get(kind, [])):
                if "skipped" in entry:
                    continue
                if not (_is_number(entry.get("words_per_second")) and entry["words_per_second"] > 0):
                    problems.append(f"{w}.scaling.{kind}[{i}].words_per_second: expected a positive number")
                if not isinstance(entry.get("peak_rss_bytes"), int) or entry["peak_rss_bytes"] <= 0:
                    problems.append(f"{w}.scaling.{kind}[{i}].peak_rss_bytes: expected a positive integer")
    problems += validate_targets(data.get("targets"), f"{where}.targets")
    return problems + (number_problems(data, where) if where == "$" else [])
