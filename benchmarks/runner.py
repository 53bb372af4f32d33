"""The harness's shared runner pieces: the subprocess steps (train, annotate, evaluate), how overrides
are written on a command line, and the run budget. A leaf module: the accuracy grid and the variants
runner both import it, and it imports neither."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence


class BenchmarkStepError(RuntimeError):
    """A training, annotation or evaluation subprocess failed (the message holds its log's tail)."""


class BudgetExhausted(Exception):
    """No new step may start: the --max-cells or --time-budget limit is reached."""


# ---------------------------------------------------------------------------------------------
# Subprocess steps


class Steps:
    """The expensive steps, each a subprocess whose output goes to a log file.

    The grid calls only these methods, so a test can replace them with fakes.
    """

    def __init__(self, python: str = sys.executable, env: Optional[Dict[str, str]] = None) -> None:
        self.python = python
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}

    def _run(self, cmd: List[str], log_path: Path) -> float:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with log_path.open("w", encoding="utf8") as log:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            tail = "\n".join(log_path.read_text(encoding="utf8", errors="replace").splitlines()[-25:])
            raise BenchmarkStepError(f"command failed (exit {done.returncode}), log {log_path}:\n{tail}")
        return seconds

    def train(
        self, config: Path, output: Path, overrides: Dict[str, object], *, gpu_id: int, code: Optional[Path] = None
    ) -> float:
        """``spacy train``; ``code``: a Python file it imports first (``--code``)."""
        cmd = [self.python, "-m", "spacy", "train", str(config), "--output", str(output), "--gpu-id", str(gpu_id)]
        if code is not None:
            cmd += ["--code", str(code)]
        for key, value in overrides.items():
            cmd += [f"--{key}", override_value(value)]
        return self._run(cmd, output / "train.log")

    def annotate(self, teacher: Path, inputs: Sequence[Path], output: Path, *, batch_size: int, gpu_id: int) -> float:
        cmd = [
            self.python,
            "-m",
            "spacy_compact_ner",
            "annotate",
            str(teacher),
            *map(str, inputs),
            str(output),
            "--batch-size",
            str(batch_size),
            "--gpu-id",
            str(gpu_id),
        ]
        return self._run(cmd, output.parent / "annotate.log")

    def crossfit(
        self,
        labeled: Path,
        unlabeled: Sequence[Path],
        output: Path,
        *,
        config: Path,
        dev: Path,
        folds: int,
        seed: int,
        work_dir: Path,
        overrides: Dict[str, object],
        batch_size: int,
        gpu_id: int,
    ) -> float:
        """``spacy_compact_ner crossfit``: ``folds`` teachers, each annotating the labeled fold it did not see."""
        cmd = [self.python, "-m", "spacy_compact_ner", "crossfit", str(labeled), str(output), "--dev", str(dev)]
        for path in unlabeled:
            cmd += ["--unlabeled", str(path)]
        cmd += ["--config", str(config), "--folds", str(folds), "--seed", str(seed), "--work-dir", str(work_dir)]
        cmd += ["--batch-size", str(batch_size), "--gpu-id", str(gpu_id)]
        for key, value in overrides.items():
            cmd += [f"--{key}", override_value(value)]
        return self._run(cmd, output.parent / f"{output.stem}.log")

    def evaluate(self, model: Path, data: Path, output: Path, *, gpu_id: int) -> dict:
        cmd = [
            self.python,
            "-m",
            "spacy",
            "evaluate",
            str(model),
            str(data),
            "--output",
            str(output),
            "--gpu-id",
            str(gpu_id),
        ]
        self._run(cmd, output.with_suffix(".log"))
        scores = json.loads(output.read_text())
        # and [tp, fp, fn] per test doc (benchmarks/doc_scores.py), checked to give the same F1
        counts_path = output.with_name(output.stem + "_doc_counts.json")
        cmd = [self.python, "-m", "benchmarks", "doc-counts", str(model), str(data), str(counts_path)]
        if isinstance(scores.get("ents_f"), (int, float)):
            cmd += ["--expected-f", repr(float(scores["ents_f"]))]
        self._run(cmd, counts_path.with_suffix(".log"))
        return {**scores, "doc_counts": json.loads(counts_path.read_text())["counts"]}


def override_value(value: object) -> str:
    """A config value as ``spacy train`` reads it on the command line (lists and dicts as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, dict)) or value is None:
        return json.dumps(value)
    return str(value)


def override_strings(overrides: Optional[Dict[str, object]]) -> Dict[str, str]:
    """Each override's value as `override_value` writes it (how results record their overrides)."""
    return {key: override_value(value) for key, value in (overrides or {}).items()}


# Overrides that differ between the seeds of a (size, system) by design: the seed, each cell's own files, and
# the dev interval the selection rule sets from the cell's shortest epoch (the rule is checked on its own).
PER_CELL_OVERRIDES = ("system.seed", "training.eval_frequency")


def comparable_overrides(overrides: Dict[str, str]) -> Dict[str, str]:
    """Recorded overrides (`override_strings`) without what differs per cell by design: the files
    (``paths.*``), `PER_CELL_OVERRIDES` and the time cap's marker file (a path inside the cell, left out of
    its callback's settings). Two trainings with equal comparable overrides ran the same settings."""
    comparable = {}
    for key, value in overrides.items():
        if key.startswith("paths.") or key in PER_CELL_OVERRIDES:
            continue
        if key == "training.before_update" and isinstance(value, str):
            try:
                settings = json.loads(value)
            except json.JSONDecodeError:
                settings = None
            if isinstance(settings, dict) and "marker" in settings:
                value = json.dumps({k: v for k, v in settings.items() if k != "marker"}, sort_keys=True)
        comparable[key] = value
    return comparable


def changed_overrides(before: Dict[str, str], now: Dict[str, str]) -> str:
    """'key: old -> new; ...' for the comparable overrides that differ ('' when none do)."""
    a, b = comparable_overrides(before), comparable_overrides(now)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k}: {a.get(k, 'unset')} -> {b.get(k, 'unset')}" for k in keys)


# ---------------------------------------------------------------------------------------------
# Budget


class Budget:
    """At most ``max_results`` new result files and ``seconds`` of wall time (0: no limit)."""

    def __init__(self, max_results: int = 0, seconds: float = 0.0) -> None:
        self.max_results = max_results
        self.seconds = seconds
        self.start = time.monotonic()
        self.results = 0
        self.reason: Optional[str] = None

    def check(self) -> None:
        """Raise BudgetExhausted if no new step may start."""
        if self.max_results and self.results >= self.max_results:
            self.reason = f"--max-cells {self.max_results} reached"
        elif self.seconds and time.monotonic() - self.start >= self.seconds:
            self.reason = f"--time-budget of {self.seconds / 60:.0f} min used"
        if self.reason:
            raise BudgetExhausted(self.reason)
