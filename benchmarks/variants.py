"""Config variants scored on dev: a resumable grid of ``spacy train`` runs, one JSON per (variant, seed).

A variants file is JSON, one entry per variant: config overrides (dotted keys, as on the ``spacy train``
command line) and a note saying what is tried::

    {"plain": {"note": "the default", "overrides": {}},
     "lr_1e-4": {"note": "half the learning rate", "overrides": {"training.optimizer.learn_rate.initial_rate": 1e-4}}}

Each run trains ``CONFIG`` with the common overrides, then the variant's, and scores ``model-best`` on the
dev set only (choosing a default on test would overfit test). Its result is
``<metrics_dir>/<variant>-s<seed>.json``; a result that exists is kept, so an interrupted grid continues
where it stopped, unless the variant's overrides changed since (an error: delete the file to measure again).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from spacy_compact_ner.tools.assets import sha256_file

from .common import machine_info, now_iso, write_json, write_text
from .runner import BenchmarkStepError, Budget, BudgetExhausted, Steps, override_strings
from .schema import VARIANT_SCHEMA

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# The fields of a variant that change the transfer set (benchmark grid only).
DATA_FIELDS = ("augment_factor", "crossfit_folds", "unlabeled_text", "max_unlabeled")

Log = Callable[[str], None]


class VariantsError(ValueError):
    """A variants file or a cached result does not fit: the message says which and why."""


@dataclass
class Variant:
    name: str
    overrides: Dict[str, object]
    note: str = ""
    # Benchmark grid only: augmented copies of each doc in the transfer set the teacher annotates.
    augment_factor: int = 0
    # Benchmark grid only: the transfer set annotated by this many cross-fitted teachers (0: the cell's teacher).
    crossfit_folds: int = 0
    # Benchmark grid only: text files (one doc per line) added to the transfer set, at most max_unlabeled docs.
    unlabeled_text: Tuple[str, ...] = ()
    max_unlabeled: Optional[int] = None

    @property
    def changes_data(self) -> bool:
        """Whether the variant changes the transfer set (which only the benchmark grid builds)."""
        return bool(self.augment_factor or self.crossfit_folds or self.unlabeled_text)

    def override_strings(self) -> Dict[str, str]:
        return override_strings(self.overrides)


def read_variants(path: Path) -> List[Variant]:
    """Parse and check a variants file (see the module docstring)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except FileNotFoundError:
        raise VariantsError(f"variants file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise VariantsError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not data:
        raise VariantsError(f"{path}: expected an object of variants, name -> {{note, overrides}}")
    variants = []
    for name, spec in data.items():
        if not _NAME.match(name):
            raise VariantsError(f"{path}: variant name {name!r} must be letters, digits and _.+- (it names files)")
        if not isinstance(spec, dict) or not isinstance(spec.get("overrides", {}), dict):
            raise VariantsError(f"{path}: variant {name!r} needs an object with an 'overrides' object")
        unknown = set(spec) - {"note", "overrides", *DATA_FIELDS}
        if unknown:
            raise VariantsError(f"{path}: variant {name!r} has unknown field(s) {sorted(unknown)}")
        overrides = spec.get("overrides", {})
        bad = [key for key in overrides if "." not in key or key.startswith("-")]
        if bad:
            raise VariantsError(f"{path}: variant {name!r}: overrides are dotted config keys without dashes, got {bad}")
        factor = _data_count(path, name, spec, "augment_factor", 1, "an integer >= 0")
        folds = _data_count(path, name, spec, "crossfit_folds", 2, "0 or an integer >= 2")
        texts = spec.get("unlabeled_text", [])
        if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
            raise VariantsError(f"{path}: variant {name!r}: unlabeled_text must be a list of file paths, got {texts!r}")
        cap = spec.get("max_unlabeled")
        if cap is not None and (not texts or not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise VariantsError(
                f"{path}: variant {name!r}: max_unlabeled must be an integer >= 1, with unlabeled_text; got {cap!r}"
            )
        variants.append(Variant(name, overrides, str(spec.get("note", "")), factor, folds, tuple(texts), cap))
    return variants


def _data_count(path: Path, name: str, spec: dict, key: str, smallest: int, what: str) -> int:
    """A variant's integer data setting ``key``: 0 (off, the default) or at least ``smallest``."""
    value = spec.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or (value != 0 and value < smallest):
        raise VariantsError(f"{path}: variant {name!r}: {key} must be {what}, got {value!r}")
    return value


def select_variants(variants: Sequence[Variant], only: Sequence[str], *, config_only: bool = False) -> List[Variant]:
    """The variants named in ``only`` (all when empty), in file order. ``config_only``: for runners
    that train on a given corpus, which leave out the variants that change the transfer set
    (``augment_factor``, ``crossfit_folds``, ``unlabeled_text``) and refuse them by name."""
    known = {v.name for v in variants}
    missing = [name for name in only if name not in known]
    if missing:
        raise VariantsError(f"unknown variant(s) {missing}; the file has {', '.join(sorted(known))}")
    chosen = [v for v in variants if not only or v.name in only]
    if config_only:
        named = [v.name for v in chosen if v.changes_data and only]
        if named:
            raise VariantsError(
                f"variant(s) {named} set {', '.join(DATA_FIELDS[:3])}: they change the transfer set, which only "
                "the benchmark grid builds (`benchmarks accuracy --systems variant.NAME`)"
            )
        chosen = [v for v in chosen if not v.changes_data]
    return chosen


def result_path(metrics_dir: Path, variant: Variant, seed: int) -> Path:
    return Path(metrics_dir) / f"{variant.name}-s{seed}.json"


def _cached(path: Path, variant: Variant, base: Dict[str, str]) -> Optional[dict]:
    if not path.is_file():
        return None
    result = json.loads(path.read_text(encoding="utf8"))
    if result.get("variant_overrides") != variant.override_strings():
        raise VariantsError(
            f"{path} was measured with overrides {result.get('variant_overrides')}, but variant {variant.name!r} "
            f"now has {variant.override_strings()}: delete the file to measure it again, or rename the variant"
        )
    measured = result.get("common_overrides", {})
    if measured != base:
        changed = sorted(k for k in set(base) | set(measured) if base.get(k) != measured.get(k))
        raise VariantsError(
            f"{path} was measured with other common overrides ({', '.join(changed)}): "
            "delete it to measure again, or use another --metrics-dir"
        )
    return result


def measured_seeds(metrics_dir: Path, variants: Sequence[Variant]) -> List[int]:
    """Seeds that have a result file for at least one of ``variants``."""
    seeds = set()
    for variant in variants:
        for path in Path(metrics_dir).glob(f"{variant.name}-s*.json"):
            suffix = path.stem[len(variant.name) + 2 :]
            if suffix.isdigit():
                seeds.add(int(suffix))
    return sorted(seeds)


def load_results(
    metrics_dir: Path, variants: Sequence[Variant], seeds: Sequence[int], common: Optional[Dict[str, object]] = None
) -> List[dict]:
    """The results already measured for these variants and seeds (checked as a resumed run checks them)."""
    base = override_strings(common)
    found = (_cached(result_path(metrics_dir, v, seed), v, base) for seed in seeds for v in variants)
    return [result for result in found if result is not None]


def run_variants(
    config: Path,
    variants: Sequence[Variant],
    *,
    train: Path,
    dev: Path,
    seeds: Sequence[int],
    metrics_dir: Path,
    work_dir: Path,
    common: Optional[Dict[str, object]] = None,
    gpu_id: int = -1,
    keep_models: bool = False,
    budget: Optional[Budget] = None,
    steps: Optional[Steps] = None,
    log: Log = print,
) -> List[dict]:
    """Train and score every (seed, variant) that has no result yet; return all results, in grid order.

    Stops cleanly (returning what exists) when ``budget`` is used up; a failed run raises with its log tail.
    """
    for path, what in ((config, "config"), (train, "training data"), (dev, "dev data")):
        if not Path(path).exists():
            raise VariantsError(f"{what} not found: {path}")
    if any(v.changes_data for v in variants):
        select_variants(variants, [v.name for v in variants], config_only=True)  # raises, naming them
    steps = steps or Steps()
    budget = budget or Budget()
    base = override_strings(common)
    results: List[dict] = []
    for seed in seeds:
        for variant in variants:
            path = result_path(metrics_dir, variant, seed)
            cached = _cached(path, variant, base)
            if cached is not None:
                results.append(cached)
                continue
            try:
                budget.check()
            except BudgetExhausted as stop:
                log(f"stopping: {stop} (run again to continue)")
                return results
            out = Path(work_dir) / f"{variant.name}-s{seed}"
            if out.exists():
                shutil.rmtree(out)  # an interrupted run: start again
            out.mkdir(parents=True)
            overrides = {
                "paths.train": str(train),
                "paths.dev": str(dev),
                "system.seed": seed,
                **(common or {}),
                **variant.overrides,
            }
            log(f"[{variant.name} seed {seed}] training (log: {out / 'train.log'})")
            seconds = steps.train(Path(config), out, overrides, gpu_id=gpu_id)
            model = out / "model-best"
            if not model.is_dir():
                raise BenchmarkStepError(
                    f"{variant.name}: spacy train wrote no model-best in {out} (no dev evaluation?)"
                )
            scores = steps.evaluate(model, Path(dev), out / "dev_scores.json", gpu_id=gpu_id)
            result = {
                "schema": VARIANT_SCHEMA,
                "variant": variant.name,
                "note": variant.note,
                "seed": seed,
                "config": {"file": str(config), "sha256": sha256_file(Path(config))},
                "common_overrides": base,
                "variant_overrides": variant.override_strings(),
                "dev": {"path": str(dev), "sha256": sha256_file(Path(dev))},
                "scores": {key: float(scores[key]) for key in ("ents_f", "ents_p", "ents_r")},
                "ents_per_type": scores.get("ents_per_type") or {},
                "train_seconds": seconds,
                "date": now_iso(),
                "machine": machine_info(),
            }
            write_json(path, result)
            budget.results += 1
            log(
                f"[{variant.name} seed {seed}] dev F1 {100 * result['scores']['ents_f']:.1f} "
                f"in {seconds / 60:.1f} min -> {path}"
            )
            if not keep_models:
                shutil.rmtree(out / "model-best", ignore_errors=True)
                shutil.rmtree(out / "model-last", ignore_errors=True)
            results.append(result)
    return results


def _mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def dev_f1_summary(metrics_dir: Path, variants: Sequence[Variant]) -> Dict[str, str]:
    """Dev F1 per variant over the seeds measured in ``metrics_dir`` ("mean ± std (n)"); results measured
    with other overrides than the variant's current ones are left out."""
    summary = {}
    for variant in variants:
        f1 = []
        for seed in measured_seeds(metrics_dir, [variant]):
            result = json.loads(result_path(metrics_dir, variant, seed).read_text(encoding="utf8"))
            if result.get("variant_overrides") == variant.override_strings():
                f1.append(100 * result["scores"]["ents_f"])
        if f1:
            summary[variant.name] = f"{_mean_std(f1)} ({len(f1)})"
    return summary


def overrides_label(overrides: Dict[str, str]) -> str:
    """A variant's overrides in a table cell: the last part of each key, e.g. `width=64`."""
    return ", ".join(f"`{k.split('.')[-1]}={v}`" for k, v in overrides.items()) or "(defaults)"


def variants_table(variants: Sequence[Variant], results: Sequence[dict], seeds: Sequence[int]) -> str:
    """Markdown: one row per variant, dev F1 per seed, mean ± std, P, R and minutes of training."""
    by_key = {(r["variant"], r["seed"]): r for r in results}
    head = ["variant", "overrides", *[f"dev F1 s{s}" for s in seeds], "mean", "P", "R", "train min", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant in variants:
        runs = [by_key.get((variant.name, s)) for s in seeds]
        done = [r for r in runs if r is not None]
        f1 = [100 * r["scores"]["ents_f"] for r in done]
        cells = [f"{100 * r['scores']['ents_f']:.1f}" if r else "-" for r in runs]

        def mean(key: str, done: List[dict] = done) -> str:
            return f"{statistics.mean(100 * r['scores'][key] for r in done):.1f}" if done else "-"

        minutes = [r["train_seconds"] / 60 for r in done if r.get("train_seconds") is not None]
        lines.append(
            "| "
            + " | ".join(
                [
                    variant.name,
                    overrides_label(variant.override_strings()),
                    *cells,
                    _mean_std(f1) if f1 else "-",
                    mean("ents_p"),
                    mean("ents_r"),
                    f"{statistics.mean(minutes):.0f}" if minutes else "-",
                    variant.note,
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def write_table(
    path: Path, title: str, variants: Sequence[Variant], results: Sequence[dict], seeds: Sequence[int]
) -> None:
    machine = results[0]["machine"] if results else machine_info()
    text = (
        f"# {title}\n\nDev-set entity F1 (never test), one `spacy train` per variant and seed; "
        f"measured on {machine['cpus']} CPU(s) ({machine['cpu']}).\n\n" + variants_table(variants, results, seeds)
    )
    write_text(path, text)
