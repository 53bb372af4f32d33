"""The benchmark report: aggregate whatever cells exist (mean ± std over seeds), check the targets
against the measured numbers, and write ``metrics/benchmark.json``, ``metrics/benchmark.md`` and PNG
plots. Missing cells are listed, never filled in; a target whose numbers are missing says so.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from . import SYSTEMS, TEACHER_VARIANT_PREFIX, VARIANT_PREFIX, system_label
from .common import Size, human_bytes, machine_info, now_iso, size_key, size_label, write_json, write_text
from .doc_scores import decode_counts, paired_bootstrap
from .runner import changed_overrides, comparable_overrides
from .schema import BENCHMARK_SCHEMA, validate_cell
from .selection import off_rule

# The targets. Thresholds are constants; whether they are met is computed from measurements.
TARGET_SIZES = (100, 250, 500)
F1_RATIO_SIZE = 500
F1_RATIO = 0.95
F1_MARGIN = 3.0
# Issue 8: against spaCy's ner with en_core_web_md vectors.
TEACHER_VS_VECTORS_MARGIN = 3.0
STUDENT_VS_VECTORS_MARGIN = 2.0
# Issue 24: the student against the teacher and spaCy's ner (with thinc's default ops and with the
# student's numpy gemm); issue 8: against the vectors baseline.
SPEED_VS_TEACHER = 50.0
SPEED_VS_SPACY = 2.0
SPEED_VS_SPACY_VECTORS = 1.5
PARAMETER_RATIO = 36.0
WHEEL_LIMIT_BYTES = 10_000_000
PLOT_SYSTEMS = ("teacher", "student_full", "student_gold", "spacy_ner", "spacy_ner_vectors")
# (system, baseline, target id, who, margin in F1 points, sizes)
MARGIN_TARGETS = (
    ("student_full", "student_gold", "student_beats_gold_only", "the gold-only student", F1_MARGIN, TARGET_SIZES),
    ("student_full", "spacy_ner", "student_beats_spacy_ner", "spaCy's default ner", F1_MARGIN, TARGET_SIZES),
    (
        "teacher",
        "spacy_ner_vectors",
        "teacher_beats_spacy_ner_vectors",
        "spaCy ner + en_core_web_md vectors",
        TEACHER_VS_VECTORS_MARGIN,
        (F1_RATIO_SIZE,),
    ),
    (
        "student_full",
        "spacy_ner_vectors",
        "student_beats_spacy_ner_vectors",
        "spaCy ner + en_core_web_md vectors",
        STUDENT_VS_VECTORS_MARGIN,
        TARGET_SIZES,
    ),
)


def is_silver(dataset: str) -> bool:
    """A dataset named ``*_silver`` has a model's predictions as reference (see benchmarks/silver.py)."""
    return dataset.endswith("_silver")


def dataset_title(dataset: str) -> str:
    return (
        f"{dataset} (silver: the reference labels are a spaCy pipeline's predictions, not gold)"
        if is_silver(dataset)
        else dataset
    )


# ---------------------------------------------------------------------------------------------
# Loading and statistics


def load_cells(metrics_dir: Path) -> Tuple[List[dict], List[str]]:
    """Valid result files under ``metrics_dir/<dataset>/n<size>-s<seed>/``, and the problems found."""
    cells, problems = [], []
    for path in sorted(Path(metrics_dir).glob("*/n*-s*/*.json")):
        if path.parts[-3] == "speed":
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            problems.append(f"{path}: unreadable ({err})")
            continue
        errors = validate_cell(data)
        if not errors and (
            data["dataset"] != path.parts[-3]
            or data["system"] != path.stem
            or f"n{size_label(data['size'])}-s{data['seed']}" != path.parts[-2]
        ):
            errors = ["its dataset/size/seed/system do not match its path"]
        if errors:
            problems.append(f"{path}: {errors[0]}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
            continue
        cells.append(data)
    return cells, problems


def drop_earlier_defaults(cells: List[dict]) -> Tuple[List[dict], Dict[str, List[str]]]:
    """The cells less the default systems' results (teacher, students, `tw_all`) that ran an earlier
    default of their config file (`config_digest.ran_earlier_settings`: their digest is not what the file
    gives now), and a note per dataset naming them: until re-run they would show another network under
    the default's name."""
    from .config_digest import DIGEST_SYSTEMS, ran_earlier_settings

    # the systems that stand for the defaults of their config file (a variant names its own overrides)
    default_systems = (*DIGEST_SYSTEMS, TWEETS_BASELINE)

    kept, dropped = [], {}
    for cell in cells:
        if cell["system"] in default_systems and ran_earlier_settings(cell):
            dropped.setdefault((cell["dataset"], cell["size"], cell["system"]), []).append(cell["seed"])
        else:
            kept.append(cell)
    notes: Dict[str, List[str]] = {}
    for (dataset, size, system), seeds in sorted(
        dropped.items(), key=lambda kv: (kv[0][0], size_key(kv[0][1]), kv[0][2])
    ):
        notes.setdefault(dataset, []).append(
            f"{dataset} n{size_label(size)} {system}: seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, sorted(seeds)))} ran an earlier default of its config file (settings digest), "
            "so left out of the tables and targets until re-run"
        )
    return kept, notes


def stat(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation (None for one value), n and the values."""
    values = [float(v) for v in values]
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) >= 2 else None,
        "n": len(values),
        "values": values,
    }


def _seeds_by_value(group: Sequence[dict], values: Sequence[str]) -> str:
    """'a (seeds 0, 1), b (seed 2)': the seeds of a group by one setting (``values[i]`` is group[i]'s)."""
    seeds: Dict[str, List[int]] = {}
    for cell, value in zip(group, values):
        seeds.setdefault(value, []).append(cell["seed"])
    return ", ".join(f"{v} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))})" for v, s in seeds.items())


def config_mismatch(group: Sequence[dict]) -> Optional[str]:
    """None when every seed of a (size, system) ran the same config; else which seeds ran which: the
    settings digest (`config_digest`: the filled config with its overrides), where every seed records one,
    or else the config file's sha256 (first 8 hex digits) and each override that differs."""
    digests = [c["config"].get("settings_sha256") for c in group]
    first = "settings" if all(digests) else "config file"
    settings = [
        {"settings": d}
        if first == "settings"
        else {
            "config file": c["config"].get("sha256") or "none",
            **comparable_overrides(c["config"].get("overrides", {})),
        }
        for c, d in zip(group, digests)
    ]
    keys = [first] + sorted({k for s in settings for k in s} - {first})
    parts = []
    for key in keys:
        if len({(key in s, json.dumps(s.get(key), sort_keys=True)) for s in settings}) > 1:
            shown = [str(s.get(key, "unset")) for s in settings]
            if key == first:
                shown = [v[:8] for v in shown]
            parts.append(f"{key} " + _seeds_by_value(group, shown))
    return "; ".join(parts) or None


def _dev_f1(group: List[dict]) -> Optional[dict]:
    values = [100 * c["dev_scores"]["ents_f"] for c in group if "ents_f" in (c.get("dev_scores") or {})]
    return stat(values) if values else None


def aggregate_dataset(
    name: str, cells: List[dict], *, sizes: Sequence[Size], seeds: Sequence[int], systems: Sequence[str]
) -> dict:
    """Mean ± std per (size, system) over the seeds present, per-type F1 at the largest size measured, missing cells."""
    mine = [c for c in cells if c["dataset"] == name]
    found_sizes = {c["size"] for c in mine}
    all_sizes = sorted(set(sizes) | found_sizes, key=size_key)
    found_systems = {c["system"] for c in mine}
    all_systems = [s for s in SYSTEMS if s in set(systems) | found_systems] + sorted(
        found_systems - set(SYSTEMS) - set(systems)
    )
    index: Dict[Tuple[Size, str], Dict[int, dict]] = {}
    for cell in mine:
        index.setdefault((cell["size"], cell["system"]), {})[cell["seed"]] = cell
    results = []
    notes = []
    teacher_dates = _teacher_dates(mine)
    for size in all_sizes:
        for system in all_systems:
            by_seed = index.get((size, system))
            if not by_seed:
                continue
            group = [by_seed[s] for s in sorted(by_seed)]
            mismatch = config_mismatch(group)
            if mismatch:
                notes.append(f"{name} n{size_label(size)} {system}: seeds trained with different configs: {mismatch}")
            off = [f"{c['seed']}" for c in group if off_rule(c)]
            if off:
                notes.append(
                    f"{name} n{size_label(size)} {system}: seed{'s' if len(off) > 1 else ''} {', '.join(off)} "
                    f"selected off the rule ({off_rule(next(c for c in group if off_rule(c)))}), so left out of "
                    "the targets"
                )
            stale = [f"{c['seed']}" for c in group if before_teacher(c, teacher_dates)]
            if stale:
                notes.append(
                    f"{name} n{size_label(size)} {system}: seed{'s' if len(stale) > 1 else ''} {', '.join(stale)} "
                    "trained before the cell's teacher was re-run (distilled from an earlier teacher), so left out "
                    "of the targets and the variant comparisons"
                )
            if system == "student_full" and any(not c.get("n_unlabeled") for c in group):
                notes.append(
                    f"{name} n{size_label(size)}: no unlabeled docs left, so pseudo-labels (which apply to "
                    "unlabeled docs only) add nothing: the full student trains exactly as gold + KD there"
                )
            results.append(
                {
                    "size": size,
                    "n_labeled": max(c["n_labeled"] for c in group),
                    "system": system,
                    "n_seeds": len(group),
                    "seeds": sorted(by_seed),
                    "f1": stat([100 * c["scores"]["ents_f"] for c in group]),
                    "precision": stat([100 * c["scores"]["ents_p"] for c in group]),
                    "recall": stat([100 * c["scores"]["ents_r"] for c in group]),
                    "train_seconds": stat([c["train_seconds"] for c in group]),
                    # over the seeds whose result recorded it (None when none did)
                    "dev_f1": _dev_f1(group),
                }
            )
    missing = [
        {"size": size, "seed": seed, "system": system}
        for size in sorted(set(sizes), key=size_key)
        for seed in seeds
        for system in systems
        if seed not in index.get((size, system), {})
    ]
    # per-type F1 of the largest labeled setting measured so far ("all" once the grid has it)
    top = max(found_sizes, key=size_key) if found_sizes else (all_sizes[-1] if all_sizes else "all")
    per_type: dict = {"size": top, "labels": [], "systems": {}}
    labels = set()
    for system in all_systems:
        by_seed = index.get((top, system))
        if not by_seed:
            continue
        values: Dict[str, List[float]] = {}
        for cell in by_seed.values():
            for label, prf in cell["scores"]["ents_per_type"].items():
                values.setdefault(label, []).append(100 * prf["f"])
        per_type["systems"][system] = {label: stat(v) for label, v in sorted(values.items())}
        labels |= set(values)
    per_type["labels"] = sorted(labels)
    test_hashes = sorted({c["test_sha256"] for c in mine})
    if len(test_hashes) > 1:
        notes.append(f"{name}: cells were scored on {len(test_hashes)} different test files")
    return {
        "dataset": name,
        "n_test": max((c["n_test"] for c in mine), default=0),
        "test_sha256": test_hashes,
        "sizes": all_sizes,
        "seeds": list(seeds),
        "systems": all_systems,
        "n_cells": len(mine),
        "results": results,
        "per_type": per_type,
        "missing": missing,
        "notes": notes,
    }


def is_distilled(system: str) -> bool:
    """Whether a system learns from its cell's teacher (its annotations): the distilled students and variants."""
    return system in ("student_full", "student_kd") or system.startswith("variant.")


def _teachers(cells: Iterable[dict]) -> Dict[Tuple[str, Size, int], dict]:
    """Each cell's teacher result by (dataset, size, seed)."""
    return {(c["dataset"], c["size"], c["seed"]): c for c in cells if c["system"] == "teacher"}


def _teacher_dates(cells: Iterable[dict]) -> Dict[Tuple[str, Size, int], str]:
    return {key: c.get("date", "") for key, c in _teachers(cells).items()}


def before_teacher(cell: dict, teacher_dates: Dict[Tuple[str, Size, int], str]) -> bool:
    """A distilled result trained before its cell's teacher: it learnt from an earlier teacher of that cell,
    which a re-run replaced (cells without a teacher result keep theirs)."""
    teacher = teacher_dates.get((cell["dataset"], cell["size"], cell["seed"]), "")
    return is_distilled(cell["system"]) and cell.get("date", "") < teacher


def _of(cells: List[dict], dataset: str, size: Size, systems: Sequence[str]) -> List[dict]:
    """The cells of these systems at (dataset, size) whose model was selected by the rule and, when
    distilled, trained after their cell's teacher."""
    dates = _teacher_dates(cells)
    return [
        c
        for c in cells
        if c["dataset"] == dataset
        and c["size"] == size
        and c["system"] in systems
        and off_rule(c) is None
        and not before_teacher(c, dates)
    ]


def left_out(cells: List[dict], dataset: str, sizes: Sequence[Size], systems: Sequence[str]) -> str:
    """'; left out, selected off the rule: teacher at 500 (seeds 0, 1; e.g. why)' for the cells a target
    skipped, and likewise the distilled results trained before their cell's (re-run) teacher."""
    dates = _teacher_dates(cells)
    # why -> (whether a cell is left out for it, the example reason shown after its seeds)
    reasons = {
        "selected off the rule": (lambda c: off_rule(c) is not None, lambda c: f"; e.g. {off_rule(c)}"),
        "trained before their cell's teacher": (lambda c: before_teacher(c, dates), lambda c: ""),
    }
    mine = [c for c in cells if c["dataset"] == dataset and c["size"] in sizes]
    text = ""
    for why, (excluded, example) in reasons.items():
        parts = []
        for system in systems:
            off = [c for c in mine if c["system"] == system and excluded(c)]
            if off:
                where = ", ".join(str(size) for size in sizes if any(c["size"] == size for c in off))
                seeds = ", ".join(str(seed) for seed in sorted({c["seed"] for c in off}))
                parts.append(f"{system} at {where} (seeds {seeds}{example(off[0])})")
        if parts:
            text += f"; left out, {why}: {'; '.join(parts)}"
    return text


def _paired(
    cells: List[dict], dataset: str, size: Size, a: str, b: str, *, split: str = "scores"
) -> Tuple[List[int], List[float], List[float]]:
    """F1 (percent) of systems a and b over the seeds where both exist and follow the selection rule.
    split: ``scores`` (test) or ``dev_scores`` (a result without them is left out)."""
    by: Dict[int, Dict[str, float]] = {}
    for c in _of(cells, dataset, size, (a, b)):
        if "ents_f" in (c.get(split) or {}):
            by.setdefault(c["seed"], {})[c["system"]] = 100 * c[split]["ents_f"]
    seeds = sorted(s for s, v in by.items() if a in v and b in v)
    return seeds, [by[s][a] for s in seeds], [by[s][b] for s in seeds]


# ---------------------------------------------------------------------------------------------
# Variants against the system they vary (student variants: the full student; teacher variants: the teacher),
# paired by seed


VARIANT_BASELINE = "student_full"
TWEETS_BASELINE = f"{VARIANT_PREFIX}tw_all"
TWEETS_VARIANT_PREFIX = f"{TWEETS_BASELINE}_"


class VariantKind(NamedTuple):
    """Systems named ``prefix<name>``, compared with ``baseline`` of the same cells."""

    prefix: str
    baseline: str
    key: str  # of the report's JSON
    title: str  # of the table
    baseline_name: str  # how the table's text calls the baseline
    where: str  # the file that describes the variants
    shared: str  # what a variant and its baseline share


VARIANT_KINDS = (
    VariantKind(
        VARIANT_PREFIX,
        VARIANT_BASELINE,
        "variants",
        "Student variants",
        "full student",
        "configs/student_variants.json",
        "labeled sample, teacher and seed",
    ),
    VariantKind(
        TEACHER_VARIANT_PREFIX,
        "teacher",
        "teacher_variants",
        "Teacher variants",
        "teacher",
        "configs/teacher_variants.json",
        "labeled sample, dev set and seed",
    ),
    # Variants of the default run's transfer set (`tw_all_<name>`: the tweets plus other settings, e.g. a
    # network under the parameter budget) against that default run, not against the full student.
    VariantKind(
        TWEETS_VARIANT_PREFIX,
        TWEETS_BASELINE,
        "tweets_variants",
        "Default-run variants (`tw_all_<name>`)",
        "default run (`tw_all`)",
        "configs/student_variants.json",
        "labeled sample, teacher, tweets and seed",
    ),
)


def variant_comparisons(
    cells: List[dict], dataset: str, prefix: str = VARIANT_PREFIX, baseline: str = VARIANT_BASELINE
) -> List[dict]:
    """Each variant of ``dataset`` (systems named ``prefix<name>``: student variants against the full
    student, teacher variants against the teacher) against ``baseline`` of the same cells (same labeled
    sample, teacher and seed), per labeled size: the paired seeds, the mean dev difference (what chooses a
    default) and the mean test difference with its paired bootstrap interval over test docs (what is
    reported). Only results selected by the rule and trained after their cell's teacher count (`_of`)."""
    if prefix == TEACHER_VARIANT_PREFIX:
        teachers = _teachers(cells)
        cells = [c for c in cells if not same_as_teacher(c, teachers)]
    found = sorted(
        {(c["size"], c["system"]) for c in cells if c["dataset"] == dataset and c["system"].startswith(prefix)},
        key=lambda k: (size_key(k[0]), k[1]),
    )
    rows = []
    for size, system in found:
        seeds, ours, base = _paired(cells, dataset, size, system, baseline)
        if not seeds:
            continue
        counts = _paired_counts(cells, dataset, size, system, baseline)
        _, dev_ours, dev_base = _paired(cells, dataset, size, system, baseline, split="dev_scores")
        dev = [x - y for x, y in zip(dev_ours, dev_base)]
        rows.append(
            {
                "size": size,
                "system": system,
                "seeds": seeds,
                "test_f1": statistics.fmean(ours),
                "test_difference": statistics.fmean(ours) - statistics.fmean(base),
                "interval": paired_bootstrap(*counts) if counts is not None else None,
                "dev_difference": statistics.fmean(dev) if dev else None,
                "dev_per_seed": dev,
            }
        )
    return rows


def same_as_teacher(cell: dict, teachers: Dict[Tuple[str, Size, int], dict]) -> bool:
    """Whether ``cell``, a teacher variant, ran its cell teacher's settings (a dataset whose teacher took the
    variant's settings): nothing to compare there. ``teachers``: `_teachers` of the results."""
    if not cell["system"].startswith(TEACHER_VARIANT_PREFIX):
        return False
    teacher = teachers.get((cell["dataset"], cell["size"], cell["seed"]))
    if teacher is None:
        return False
    return not changed_overrides(teacher["config"].get("overrides", {}), cell["config"].get("overrides", {}))


def variants_markdown(dataset: str, rows: Sequence[dict], kind: VariantKind = VARIANT_KINDS[0]) -> List[str]:
    """The table of `variant_comparisons` of one kind (empty when the dataset has no such results)."""
    if not rows:
        return []
    lines = [
        f"### {kind.title} against the {kind.baseline_name}: {dataset_title(dataset)}",
        "",
        f"Differences in F1 points, variant minus the {kind.baseline_name} of the same cell "
        f"(same {kind.shared}), mean over the paired seeds. Dev chooses a default; test reports, "
        f"with a paired bootstrap 95% interval over test docs. Variants are described in `{kind.where}`"
        + (
            "; a variant is left out at a cell whose teacher ran its settings (the dataset's teacher took them)."
            if kind.prefix == TEACHER_VARIANT_PREFIX
            else "."
        ),
        "",
        "| labeled | variant | seeds | test F1 | test Δ [95% CI] | test Δ per seed | dev Δ | dev Δ per seed |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ci = r["interval"]
        test = f"{r['test_difference']:+.1f}" + (f" [{ci['low']:+.1f}, {ci['high']:+.1f}]" if ci else " (no interval)")
        per_seed = ", ".join(f"{d:+.1f}" for d in ci["per_seed"]) if ci else "—"
        dev = f"{r['dev_difference']:+.1f}" if r["dev_difference"] is not None else "—"
        dev_seeds = ", ".join(f"{d:+.1f}" for d in r["dev_per_seed"]) or "—"
        lines.append(
            f"| {size_label(r['size'])} | {r['system'].removeprefix(kind.prefix)} | {len(r['seeds'])} | "
            f"{r['test_f1']:.1f} | {test} | {per_seed} | {dev} | {dev_seeds} |"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# Targets


def _target(tid: str, description: str, status: str, detail: str, measured: Optional[dict] = None) -> dict:
    return {"id": tid, "description": description, "status": status, "detail": detail, "measured": measured or {}}


def _paired_counts(cells: List[dict], dataset: str, size: Size, a: str, b: str) -> Optional[Tuple[list, list]]:
    """Per-doc test counts of systems a and b over the seeds where both exist, or None where a cell of
    those seeds has none (written before the counts were recorded)."""
    by: Dict[int, Dict[str, dict]] = {}
    for c in _of(cells, dataset, size, (a, b)):
        by.setdefault(c["seed"], {})[c["system"]] = c
    pairs = [by[s] for s in sorted(by) if a in by[s] and b in by[s]]
    if not pairs or any("test_doc_counts" not in pair[x] for pair in pairs for x in (a, b)):
        return None
    return (
        [decode_counts(pair[a]["test_doc_counts"]) for pair in pairs],
        [decode_counts(pair[b]["test_doc_counts"]) for pair in pairs],
    )


# Per dataset: (size, ratio, system) targets of a student's F1 to the teacher's, and the margin targets.
DEFAULT_TARGETS = {"ratios": ((F1_RATIO_SIZE, F1_RATIO, "student_full"),), "margins": MARGIN_TARGETS}
# The student the workflow trains by default on WNUT-16: its transfer set adds the real tweets (issue 20).
DEFAULT_WNUT_STUDENT = TWEETS_BASELINE
# What a target calls a system.
TARGET_NAMES = {
    "student_full": "full student",
    DEFAULT_WNUT_STUDENT: "full student + 25k tweets (tw_all: the workflow's default transfer set)",
}
# CoNLL-2003 (issue 25): the paper's setting, where the method is meant to reach the teacher.
CONLL_MARGIN = 5.0
DATASET_TARGETS = {
    "conll03": {
        "ratios": ((100, 0.97, "student_full"), (500, 1.0, "student_full"), (1000, 1.0, "student_full")),
        "margins": (
            (
                "student_full",
                "spacy_ner_vectors",
                "student_beats_spacy_ner_vectors",
                "spaCy ner + en_core_web_md vectors",
                CONLL_MARGIN,
                (100, 500, 1000),
            ),
            (
                "teacher",
                "spacy_ner_vectors",
                "teacher_beats_spacy_ner_vectors",
                "spaCy ner + en_core_web_md vectors",
                CONLL_MARGIN,
                (500,),
            ),
        ),
    },
    # WNUT-16 (issue 20): 95% of the teacher at 500 and all labeled, +3 over gold only at all labeled, for
    # the full student and for the default workflow's student (its transfer set with the tweets).
    "wnut16": {
        "ratios": tuple(
            (size, F1_RATIO, system) for system in ("student_full", DEFAULT_WNUT_STUDENT) for size in (500, "all")
        ),
        "margins": MARGIN_TARGETS
        + (
            (
                "student_full",
                "student_gold",
                "student_beats_gold_only_at_all",
                "the gold-only student",
                F1_MARGIN,
                ("all",),
            ),
            (
                DEFAULT_WNUT_STUDENT,
                "student_gold",
                "tw_all_beats_gold_only_at_all",
                "the gold-only student",
                F1_MARGIN,
                ("all",),
            ),
            # issue 8's margin over the strongest spaCy baseline, for the default workflow's student too
            (
                DEFAULT_WNUT_STUDENT,
                "spacy_ner_vectors",
                "tw_all_beats_spacy_ner_vectors",
                "spaCy ner + en_core_web_md vectors",
                STUDENT_VS_VECTORS_MARGIN,
                TARGET_SIZES,
            ),
        ),
    },
}


def _ratio_target(
    cells: List[dict], dataset: str, size: Size, threshold: float, n_seeds_expected: int, system: str = "student_full"
) -> dict:
    prefix = "student" if system == "student_full" else system.removeprefix("variant.")
    tid = f"{prefix}_f1_vs_teacher" + ("" if size == F1_RATIO_SIZE else f"_at_{size}")
    desc = f"{dataset}: {TARGET_NAMES.get(system, system)}'s F1 >= {threshold:.0%} of the teacher's at {size} labeled"
    seeds, student, teacher = _paired(cells, dataset, size, system, "teacher")
    skipped = left_out(cells, dataset, [size], (system, "teacher"))
    if not seeds:
        return _target(tid, desc, "missing data", f"no seed with both teacher and {system} at {size} labeled{skipped}")
    s_mean, t_mean = statistics.fmean(student), statistics.fmean(teacher)
    ratio = s_mean / t_mean if t_mean > 0 else None
    met = ratio is not None and ratio >= threshold
    partial = "" if len(seeds) >= n_seeds_expected else f"; only {len(seeds)} of {n_seeds_expected} seeds"
    status = "met" if met else "not met"
    if met and partial:
        status = "missing data"  # met on the seeds so far: a target is met on all of them
    ratio_text = f"{ratio:.1%}" if ratio is not None else "undefined (teacher F1 0)"
    return _target(
        tid,
        desc,
        status,
        f"student {s_mean:.1f} vs teacher {t_mean:.1f} F1 = {ratio_text} "
        f"(mean over {len(seeds)} paired seeds{partial}){skipped}",
        {
            "size": size,
            "n_seeds": len(seeds),
            "system": system,
            "student_f1": s_mean,
            "teacher_f1": t_mean,
            "ratio": ratio,
            "threshold": threshold,
        },
    )


def _margin_part(p: dict) -> str:
    seeds = f"{p['n_seeds']} seed{'s' if p['n_seeds'] != 1 else ''}"
    text = f"{p['size']}: {p['difference']:+.1f} ({p['system_f1']:.1f} vs {p['baseline_f1']:.1f}, {seeds}"
    ci = p.get("interval")
    if ci:
        per_seed = ", ".join(f"{d:+.1f}" for d in ci["per_seed"])
        text += f"; {ci['confidence']:.0%} CI [{ci['low']:+.1f}, {ci['high']:+.1f}], per seed {per_seed}"
    else:
        text += "; no interval: cells without per-doc test counts"
    return text + ")"


def accuracy_targets(
    cells: List[dict], dataset: str, *, n_seeds_expected: int, sizes: Optional[Sequence[Size]] = None
) -> List[dict]:
    """The issue's accuracy targets, each met / not met / missing data, from the cells of ``dataset``.

    sizes: the labeled sizes of this dataset's grid; a target is checked at the sizes of it that the grid
    has (the silver benchmark has 500 of 100/250/500), and left out where it has none. A margin ("beats X by
    >= N F1") is met only where the paired bootstrap interval of the difference (`doc_scores.paired_bootstrap`,
    test docs resampled, mean over the paired seeds) lies above N; without per-doc counts there is no
    interval, and the target is missing data. Only results selected by the rule (`selection.off_rule`)
    count; the detail names those left out.
    """
    spec = DATASET_TARGETS.get(dataset, DEFAULT_TARGETS)
    targets = [
        _ratio_target(cells, dataset, size, threshold, n_seeds_expected, system)
        for size, threshold, system in spec["ratios"]
        if sizes is None or size in sizes or size == F1_RATIO_SIZE
    ]
    for system, baseline, tid, who, margin, target_sizes in spec["margins"]:
        if baseline == "spacy_ner_vectors" and is_silver(dataset):
            continue  # issue 8's targets are for gold data: the silver tagger shares those vectors
        if sizes is not None:
            target_sizes = tuple(size for size in target_sizes if size in sizes)
            if not target_sizes:
                continue
        name = TARGET_NAMES.get(system, system)
        desc = (
            f"{dataset}: {name} beats {who} by >= {margin:.0f} F1 at {', '.join(map(str, target_sizes))} labeled "
            "(the 95% interval above it)"
        )
        per_size, missing, no_interval, failed, partial = [], [], [], [], []
        for size in target_sizes:
            seeds, ours, base = _paired(cells, dataset, size, system, baseline)
            if not seeds:
                missing.append(size)
                continue
            difference = statistics.fmean(ours) - statistics.fmean(base)
            counts = _paired_counts(cells, dataset, size, system, baseline)
            interval = paired_bootstrap(*counts) if counts is not None else None
            per_size.append(
                {
                    "size": size,
                    "n_seeds": len(seeds),
                    "system_f1": statistics.fmean(ours),
                    "baseline_f1": statistics.fmean(base),
                    "difference": difference,
                    "interval": interval,
                }
            )
            if difference < margin or (interval is not None and interval["low"] < margin):
                failed.append(size)
            elif interval is None:
                no_interval.append(size)  # the mean clears the margin; whether the interval does is unknown
            elif len(seeds) < n_seeds_expected:
                partial.append(size)  # cleared on the seeds so far
        parts = [_margin_part(p) for p in per_size]
        if missing:
            parts.append(f"no data at {', '.join(map(str, missing))}")
        if partial:
            parts.append(f"cleared at {', '.join(map(str, partial))} on fewer than {n_seeds_expected} seeds")
        skipped = left_out(cells, dataset, target_sizes, (system, baseline))
        status = "not met" if failed else ("missing data" if missing or no_interval or partial else "met")
        targets.append(
            _target(
                tid,
                desc,
                status,
                "; ".join(parts) + skipped,
                {
                    "threshold": margin,
                    "per_size": per_size,
                    "missing_sizes": missing,
                    "sizes_without_interval": no_interval,
                    "sizes_short_of_seeds": partial,
                },
            )
        )
    return targets


def _run(speed: dict, system: str, threads: str = "1") -> Optional[dict]:
    return ((speed.get("systems") or {}).get(system) or {}).get("threads", {}).get(threads)


def speed_targets(speed: Optional[dict]) -> List[dict]:
    """The issue's speed and size targets from a speed JSON (student, teacher, spacy_ner by name)."""
    systems = (speed or {}).get("systems") or {}
    targets = []
    for other, factor, tid in (
        ("teacher", SPEED_VS_TEACHER, "student_speed_vs_teacher"),
        ("spacy_ner", SPEED_VS_SPACY, "student_speed_vs_spacy_ner"),
        ("spacy_ner_numpy_gemm", SPEED_VS_SPACY, "student_speed_vs_spacy_ner_numpy_gemm"),
        ("spacy_ner_vectors", SPEED_VS_SPACY_VECTORS, "student_speed_vs_spacy_ner_vectors"),
    ):
        desc = f"student words/s >= {factor:g}x {other}'s (1 thread, whole pipeline)"
        s_run, o_run = _run(speed or {}, "student"), _run(speed or {}, other)
        s_wps = (s_run or {}).get("pipeline_words_per_second")
        o_wps = (o_run or {}).get("pipeline_words_per_second")
        if not s_wps or not o_wps:
            absent = [n for n, v in (("student", s_wps), (other, o_wps)) if not v]
            targets.append(_target(tid, desc, "missing data", f"not measured: {', '.join(absent)}"))
            continue
        ratio = s_wps / o_wps
        targets.append(
            _target(
                tid,
                desc,
                "met" if ratio >= factor else "not met",
                f"{s_wps:,.0f} vs {o_wps:,.0f} words/s = {ratio:.1f}x",
                {
                    "student_words_per_second": s_wps,
                    "other_words_per_second": o_wps,
                    "ratio": ratio,
                    "threshold": factor,
                },
            )
        )
    desc = f"student parameters <= 1/{PARAMETER_RATIO:g} of the teacher's"
    student, teacher = systems.get("student"), systems.get("teacher")
    if not student or not teacher or not student.get("parameters") or not teacher.get("parameters"):
        targets.append(_target("student_parameters", desc, "missing data", "student and teacher not both measured"))
    else:
        ratio = teacher["parameters"] / student["parameters"]
        targets.append(
            _target(
                "student_parameters",
                desc,
                "met" if ratio >= PARAMETER_RATIO else "not met",
                f"{student['parameters']:,} vs {teacher['parameters']:,} = 1/{ratio:.1f}",
                {
                    "student_parameters": student["parameters"],
                    "teacher_parameters": teacher["parameters"],
                    "ratio": ratio,
                    "threshold": PARAMETER_RATIO,
                },
            )
        )
    desc = f"student wheel <= {WHEEL_LIMIT_BYTES / 1e6:g} MB"
    wheel = (student or {}).get("wheel_bytes")
    if not wheel:
        targets.append(_target("student_wheel_size", desc, "missing data", "no student wheel measured"))
    else:
        targets.append(
            _target(
                "student_wheel_size",
                desc,
                "met" if wheel <= WHEEL_LIMIT_BYTES else "not met",
                f"{human_bytes(wheel)} ({wheel:,} bytes)",
                {"wheel_bytes": wheel, "threshold_bytes": WHEEL_LIMIT_BYTES},
            )
        )
    return targets


# ---------------------------------------------------------------------------------------------
# Markdown


def fmt_stat(s: Optional[dict], digits: int = 1) -> str:
    if not s:
        return "—"
    if s["std"] is None:
        return f"{s['mean']:.{digits}f} (n=1)"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} (n={s['n']})"


def _size_heading(size: Size, n_labeled: Optional[int]) -> str:
    if size == "all":
        return f"all ({n_labeled:,})" if n_labeled else "all"
    return f"{size:,}" if isinstance(size, int) else str(size)


def _status(target: dict) -> str:
    return {"met": "**met**", "not met": "**not met**", "missing data": "**missing data**"}[target["status"]]


def targets_markdown(targets: Iterable[dict]) -> List[str]:
    return [f"- {_status(t)}: {t['description']} — {t['detail']}" for t in targets]


def accuracy_markdown(agg: dict, *, plot: Optional[str]) -> List[str]:
    name = agg["dataset"]
    rows = {(r["size"], r["system"]): r for r in agg["results"]}
    n_labeled = {r["size"]: r["n_labeled"] for r in agg["results"]}
    systems = agg["systems"]
    # On silver data a model with the silver tagger's own vectors has an edge: marked with a dagger.
    marked = {"spacy_ner_vectors"} if is_silver(name) else set()

    def head(system: str) -> str:
        return system_label(system) + (" †" if system in marked else "")

    heads = [head(s) for s in systems]

    def size_table(cell: Callable[[Optional[dict]], str]) -> List[str]:
        """A labeled size per line, a system per column; ``cell`` formats one result row (None: not measured)."""
        table = ["| labeled | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(systems)]
        for size in agg["sizes"]:
            cells = [cell(rows.get((size, s))) for s in systems]
            table.append(f"| {_size_heading(size, n_labeled.get(size))} | " + " | ".join(cells) + " |")
        return table

    lines = [
        f"### Accuracy: {dataset_title(name)}",
        "",
        f"Test split: {agg['n_test']:,} sentences, the same for every cell. Entity-level micro F1 (%), "
        "mean ± sample std over seeds (n = seeds measured); the labeled sample and training seed vary with the seed, "
        "the rest of the training split is the unlabeled text.",
        "",
        *size_table(lambda row: fmt_stat((row or {}).get("f1"))),
    ]
    if marked & set(systems):
        lines += ["", "† uses en_core_web_md's vectors, which also made the silver labels: an edge no other row has."]
    lines += [
        "",
        "Precision / recall (%, mean over seeds):",
        "",
        *size_table(lambda row: f"{row['precision']['mean']:.1f} / {row['recall']['mean']:.1f}" if row else "—"),
    ]
    if any(r.get("dev_f1") for r in agg["results"]):
        lines += [
            "",
            "Dev F1 (%) of the same models on the split each was selected on (the best checkpoint's "
            "score, so optimistic for every system alike): the numbers to choose defaults by "
            "(n = seeds whose result recorded it):",
            "",
            *size_table(lambda row: fmt_stat((row or {}).get("dev_f1"))),
        ]
    lines += [
        "",
        "Training time (s, mean over seeds; distilled students also need the teacher and its annotation pass):",
        "",
        *size_table(lambda row: f"{row['train_seconds']['mean']:,.0f}" if row else "—"),
    ]
    per_type = agg["per_type"]
    top = per_type["size"]
    lines += ["", "Per-type F1 (%), " + ("all training sentences labeled:" if top == "all" else f"{top} labeled:"), ""]
    if per_type["systems"]:
        pt_systems = [s for s in systems if s in per_type["systems"]]
        lines += ["| type | " + " | ".join(head(s) for s in pt_systems) + " |", "|---|" + "---:|" * len(pt_systems)]
        for label in per_type["labels"]:
            lines.append(
                f"| {label} | " + " | ".join(fmt_stat(per_type["systems"][s].get(label)) for s in pt_systems) + " |"
            )
    else:
        lines.append(f"_missing: no cell with {'all training sentences' if top == 'all' else top} labeled yet._")
    if plot:
        lines += ["", f"![{name}: test F1 against labeled sentences]({plot})"]
    missing = agg["missing"]
    lines += [""]
    if missing:
        by_system: Dict[str, List[str]] = {}
        for m in missing:
            by_system.setdefault(m["system"], []).append(f"n{size_label(m['size'])}-s{m['seed']}")
        lines.append(f"Missing cells ({len(missing)}), not included above:")
        lines += [f"- {system_label(s)}: {', '.join(v)}" for s, v in by_system.items()]
    else:
        lines.append("No missing cells: every (size, seed, system) of the grid is measured.")
    for note in agg["notes"]:
        lines.append(f"- note: {note}")
    return lines


def _wps(value: Optional[float]) -> str:
    return f"{value:,.0f}" if value else "—"


def speed_markdown(speed: dict, *, image_prefix: str = "", heading: str = "###") -> str:
    settings = speed["settings"]
    text = speed["text"]
    machine = speed["machine"]
    threads = [str(t) for t in settings["thread_counts"]]
    lines = [
        f"{heading} Speed and size",
        "",
        f"Measured {speed['date']} on {machine['cpu']} ({machine['cpus']} cores), Python {machine['python']}, "
        f"spaCy {machine['versions'].get('spacy')}. Text: {text['n_words']:,} words (spaCy tokens) in "
        f"{text['n_docs']:,} docs from {', '.join(text['sources'])}{' (cycled)' if text.get('cycled') else ''}. "
        f"Batch size {settings['batch_size']} docs; "
        f"warm-up on the first {min(settings['warmup_docs'], text['n_docs']):,} docs, then the median of "
        f"{settings['repeats']} timed passes. "
        "Thread counts set through the `*_NUM_THREADS` variables and `torch.set_num_threads`, each system in its own "
        "process; systems without a transformer run with torch's import blocked, as when installed without torch. "
        "*Pipeline*: `nlp.pipe` on raw text (tokenizer and every component); *NER only*: pre-tokenized docs "
        "through the "
        "NER component and the components it listens to. Peak RSS: while tagging, 1 thread (the model included).",
        "",
    ]
    head = ["system", "parameters", "NER parameters", "static vectors", "on disk", "wheel"]
    for t in threads:
        head += [f"words/s {t} thr.", f"NER only {t} thr."]
    head += ["`spacy benchmark speed` 1 thr. (95% CI)", "peak RSS 1 thr."]
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, system in speed["systems"].items():
        row = [
            name,
            f"{system['parameters'] / 1e6:.2f}M",
            f"{system['ner_parameters'] / 1e6:.2f}M",
            f"{system['vectors'] / 1e6:.1f}M" if system["vectors"] else "—",
            human_bytes(system["disk_bytes"]),
            human_bytes(system.get("wheel_bytes")),
        ]
        for t in threads:
            run = system["threads"].get(t) or {}
            row += [_wps(run.get("pipeline_words_per_second")), _wps(run.get("ner_words_per_second"))]
        one = system["threads"].get("1") or {}
        bench = one.get("spacy_benchmark_speed")
        row.append(
            f"{bench['mean_words_per_second']:,.0f} ({bench['ci95_low']:,.0f}–{bench['ci95_high']:,.0f})"
            if bench
            else "—"
        )
        row.append(human_bytes(one.get("peak_rss_bytes")))
        lines.append("| " + " | ".join(row) + " |")
    for name, error in (speed.get("failed") or {}).items():
        lines.append(f"| {name} | failed: {error.strip().splitlines()[-1][:120] if error.strip() else 'unknown'} |")
    lines += ["", f"{heading}# Speed and size targets", ""] + targets_markdown(speed["targets"])
    scaling_rows = [(n, s["scaling"]) for n, s in speed["systems"].items() if s.get("scaling")]
    if any(sc["input_words"] or sc["doc_length"] for _, sc in scaling_rows):
        lines += [
            "",
            f"{heading}# Scaling (1 thread, whole pipeline, median of {settings['scaling_repeats']}): "
            "words/s, peak RSS",
            "",
        ]
        words_targets = settings["scaling_words"]
        if words_targets:
            lines += [
                "| system | " + " | ".join(f"{w:,} words" for w in words_targets) + " |",
                "|---|" + "---:|" * len(words_targets),
            ]
            for name, sc in scaling_rows:
                if sc["input_words"]:  # systems measured without scaling (``*_numpy_gemm``) have no row
                    lines.append(f"| {name} | " + " | ".join(_scaling_cell(e) for e in sc["input_words"]) + " |")
            lines.append("")
        lengths = settings["scaling_doc_lengths"]
        if lengths:
            lines += [
                f"Docs of fixed length, {settings['scaling_doc_words']:,} words in all (whole pipeline, "
                f"median of {settings['scaling_repeats']}), by thread count:",
                "",
                "| system | threads | " + " | ".join(f"docs of {n:,} tokens" for n in lengths) + " |",
                "|---|---:|" + "---:|" * len(lengths),
            ]
            for name, sc in scaling_rows:
                by_threads: Dict[int, List[dict]] = {}
                for entry in sc["doc_length"]:  # results written before the thread column ran on 1 thread
                    by_threads.setdefault(int(entry.get("threads", 1)), []).append(entry)
                for threads, entries in sorted(by_threads.items()):
                    lines.append(f"| {name} | {threads} | " + " | ".join(_scaling_cell(e) for e in entries) + " |")
        if speed.get("plot"):
            lines += ["", f"![words/s and peak memory as input grows]({image_prefix}{Path(speed['plot']).name})"]
        lines += [
            "",
            "Skipped settings would take longer than the per-setting limit "
            f"({settings['scaling_max_seconds']:,.0f} s, estimated from the 1-thread words/s).",
        ]
    return "\n".join(lines)


def _scaling_cell(entry: dict) -> str:
    if "skipped" in entry:
        return "failed" if entry["skipped"].startswith("failed") else "skipped"
    return f"{entry['words_per_second']:,.0f} w/s, {human_bytes(entry['peak_rss_bytes'])}"


# ---------------------------------------------------------------------------------------------
# Plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_f1(agg: dict, path: Path, systems: Sequence[str] = PLOT_SYSTEMS) -> bool:
    """F1 against labeled sentences (log x), mean with std error bars; False if nothing to plot."""
    rows = [r for r in agg["results"] if r["system"] in systems]
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    styles = {
        "teacher": ("k", "s"),
        "student_full": ("tab:blue", "o"),
        "student_kd": ("tab:cyan", "v"),
        "student_gold": ("tab:orange", "^"),
        "spacy_ner": ("tab:red", "D"),
        "spacy_ner_vectors": ("tab:purple", "P"),
    }
    for system in systems:
        points = sorted((r["n_labeled"], r["f1"]) for r in rows if r["system"] == system)
        if not points:
            continue
        color, marker = styles.get(system, (None, "o"))
        ax.errorbar(
            [p[0] for p in points],
            [p[1]["mean"] for p in points],
            yerr=[p[1]["std"] or 0.0 for p in points],
            color=color,
            marker=marker,
            capsize=3,
            label=system_label(system),
        )
    ticks = sorted({r["n_labeled"] for r in rows})
    everything = {r["n_labeled"] for r in rows if r["size"] == "all"}
    ax.set_xscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:,}" + (" (all)" if t in everything else "") for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labeled training sentences")
    silver = " (silver)" if is_silver(agg["dataset"]) else ""
    ax.set_ylabel("test entity F1 (%)" + (", silver reference" if silver else ""))
    ax.set_title(f"{agg['dataset']}: F1 vs labeled data{silver} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    # below the axes: inside, it hid the low-resource points of whichever curve ran under it
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_scaling(speed: dict, path: Path) -> bool:
    """words/s and peak RSS against input words, and words/s against doc length; False if no data."""
    series = {n: s.get("scaling") or {} for n, s in speed["systems"].items()}
    if not any(sc.get("input_words") or sc.get("doc_length") for sc in series.values()):
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=110)
    for name, sc in series.items():
        iw = [e for e in sc.get("input_words", []) if "skipped" not in e]
        if iw:
            axes[0].plot([e["n_words"] for e in iw], [e["words_per_second"] for e in iw], marker="o", label=name)
            axes[1].plot([e["n_words"] for e in iw], [e["peak_rss_bytes"] / 1e6 for e in iw], marker="o", label=name)
        dl = [e for e in sc.get("doc_length", []) if "skipped" not in e and e.get("threads", 1) == 1]
        if dl:
            axes[2].plot([e["doc_tokens"] for e in dl], [e["words_per_second"] for e in dl], marker="o", label=name)
    for ax, xlabel, ylabel in (
        (axes[0], "input words", "words/s (1 thread)"),
        (axes[1], "input words", "peak RSS while tagging (MB)"),
        (axes[2], "tokens per doc", "words/s (1 thread)"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ylabel.startswith("words/s"):
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# The report


def write_speed(
    data: dict,
    output_json: Path,
    output_md: Optional[Path] = None,
    *,
    plot: Optional[Path] = None,
    image_prefix: str = "",
    log: Callable[[str], None] = print,
) -> dict:
    """Add the speed targets (and the scaling plot) to the measurements of `speed.run_speed`, write the
    JSON and the markdown. RETURNS (dict): the speed JSON as written."""
    data["targets"] = speed_targets(data)
    if plot is not None:
        try:
            if plot_scaling(data, plot):
                data["plot"] = str(plot)
        except ImportError as err:  # matplotlib is a dev extra
            log(f"[speed] no plot ({err}); install matplotlib")
    write_json(output_json, data)
    if output_md is not None:
        write_text(output_md, speed_markdown(data, image_prefix=image_prefix) + "\n")
    return data


def build_report(
    *,
    metrics_dir: Path = Path("metrics/benchmark"),
    speed_json: Optional[Path] = Path("metrics/benchmark_speed.json"),
    output_json: Path = Path("metrics/benchmark.json"),
    output_md: Path = Path("metrics/benchmark.md"),
    plot_dir: Path = Path("metrics"),
    datasets: Sequence[str] = ("wnut16",),
    sizes: Sequence[Size] = (100, 250, 500, "all"),
    seeds: Sequence[int] = (0, 1, 2),
    systems: Sequence[str] = SYSTEMS,
    dataset_sizes: Optional[Dict[str, Sequence[Size]]] = None,
    targets_datasets: Sequence[str] = ("wnut16",),
    image_prefix: str = "metrics/",
) -> dict:
    """Aggregate the cells found and the speed JSON (if any) into JSON, markdown and plots.

    datasets/sizes/seeds/systems: the grid expected (what is absent from it is listed as missing);
    cells of other datasets found under ``metrics_dir`` are aggregated too.
    dataset_sizes: sizes expected of a dataset whose grid differs from ``sizes`` (sotu_silver: 500, 2000).
    targets_datasets: the datasets whose accuracy targets are checked.
    image_prefix (str): Prefix of image links in the markdown ("metrics/" suits the README).
    """
    cells, problems = load_cells(metrics_dir)
    cells, earlier = drop_earlier_defaults(cells)
    expected_sizes = dataset_sizes or {}
    names = list(dict.fromkeys([*datasets, *sorted({c["dataset"] for c in cells})]))
    accuracy, plots = {}, {}
    for name in names:
        agg = aggregate_dataset(name, cells, sizes=expected_sizes.get(name, sizes), seeds=seeds, systems=systems)
        plot_path = Path(plot_dir) / f"benchmark_{name}_f1.png"
        try:
            if plot_f1(agg, plot_path):
                plots[name] = str(plot_path)
        except ImportError as err:  # matplotlib is a dev extra
            agg["notes"].append(f"no plot: {err} (install matplotlib)")
        agg["notes"] += earlier.get(name, [])
        accuracy[name] = agg
    comparisons = {
        kind.key: {
            name: rows for name in names if (rows := variant_comparisons(cells, name, kind.prefix, kind.baseline))
        }
        for kind in VARIANT_KINDS
    }
    targets = [
        target
        for name in targets_datasets
        for target in accuracy_targets(cells, name, n_seeds_expected=len(seeds), sizes=expected_sizes.get(name, sizes))
    ]
    speed = None
    if speed_json is not None and Path(speed_json).is_file():
        speed = json.loads(Path(speed_json).read_text())
        speed["targets"] = speed_targets(speed)  # recomputed from its numbers
    targets += speed_targets(speed)
    data = {
        "schema": BENCHMARK_SCHEMA,
        "date": now_iso(),
        "machine": machine_info(),
        "cells": {"count": len(cells), "root": str(metrics_dir), "invalid": problems},
        "accuracy": accuracy,
        "targets": targets,
        **comparisons,
        "speed": speed,
        "plots": plots,
    }
    write_json(output_json, data)
    write_text(output_md, report_markdown(data, image_prefix=image_prefix) + "\n")
    return data


def report_markdown(data: dict, *, image_prefix: str = "metrics/") -> str:
    lines = [
        "## Benchmark",
        "",
        f"Generated {data['date']} by `python -m benchmarks report` from {data['cells']['count']} "
        f"result files under `{data['cells']['root']}` (each: one dataset, labeled size, seed and system).",
        "",
        "### Targets (computed from the measurements below)",
        "",
    ]
    lines += targets_markdown(data["targets"])
    for name, agg in data["accuracy"].items():
        plot = data["plots"].get(name)
        lines += [""] + accuracy_markdown(agg, plot=f"{image_prefix}{Path(plot).name}" if plot else None)
        for kind in VARIANT_KINDS:
            if data.get(kind.key, {}).get(name):
                lines += [""] + variants_markdown(name, data[kind.key][name], kind)
    lines.append("")
    if data.get("speed"):
        lines.append(speed_markdown(data["speed"], image_prefix=image_prefix))
    else:
        lines += ["### Speed and size", "", "_missing: not measured yet (`python -m benchmarks speed`)._"]
    if data["cells"]["invalid"]:
        lines += ["", "Result files skipped as invalid:"] + [f"- {p}" for p in data["cells"]["invalid"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The README's headline table (generated from metrics/benchmark.json, never typed)

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
README_SIZE = 500  # the default labeled size of `spacy project run all`
# (accuracy system, its name in the speed section or None, column heading)
README_COLUMNS = (
    ("teacher", "teacher", "teacher"),
    ("student_full", "student", "student (full)"),
    # the default workflow's student on WNUT-16: the full student with real tweets added as unlabeled text
    ("variant.tw_all", None, "student (full) + 25k tweets"),
    ("student_gold", None, "student (gold only)"),
    ("spacy_ner", "spacy_ner", "spaCy `ner`"),
    ("spacy_ner_vectors", "spacy_ner_vectors", "spaCy `ner` + md vectors"),
)


def readme_sizes(agg: dict) -> List[Size]:
    """The labeled sizes of a dataset the README shows: `README_SIZE` and the largest one measured."""
    measured = sorted({r["size"] for r in agg["results"]}, key=size_key)
    if not measured:
        return []
    return sorted({s for s in measured if s == README_SIZE} | {measured[-1]}, key=size_key)


def _readme_f1(row: Optional[dict], n_seeds: int) -> str:
    if not row:
        return "—"
    f1 = row["f1"]
    text = f"{f1['mean']:.1f}" if f1["std"] is None else f"{f1['mean']:.1f} ± {f1['std']:.1f}"
    return text if f1["n"] == n_seeds else f"{text} (n={f1['n']})"


def _readme_accuracy_rows(name: str, agg: dict) -> List[str]:
    rows = {(r["size"], r["system"]): r for r in agg["results"]}
    lines = []
    for size in readme_sizes(agg):
        found = [rows.get((size, system)) for system, _, _ in README_COLUMNS]
        n_labeled = max(r["n_labeled"] for r in found if r) if any(found) else None
        n_seeds = max((r["f1"]["n"] for r in found if r), default=0)
        teacher, student = rows.get((size, "teacher")), rows.get((size, "student_full"))
        ratio = (
            f"{student['f1']['mean'] / teacher['f1']['mean']:.0%}"
            if teacher and student and teacher["f1"]["mean"] > 0
            else "—"
        )
        label = f"{dataset_label(name)}, {_size_heading(size, n_labeled)} labeled, test F1"
        seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
        cells = [_readme_f1(row, n_seeds) for row in found]
        lines.append(f"| {label} ({seeds}) | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def dataset_label(name: str) -> str:
    """A dataset's short name in the README table."""
    return {"wnut16": "WNUT-16", "sotu_silver": "State of the Union (silver)", "conll03": "CoNLL-2003"}.get(
        name, f"{name} (silver)" if is_silver(name) else name
    )


def _readme_speed_rows(speed: dict) -> List[str]:
    systems = speed.get("systems") or {}
    found = [systems.get(name) if name else None for _, name, _ in README_COLUMNS]
    if not any(found):
        return []

    def words_per_second(system: Optional[dict]) -> Optional[float]:
        return ((system or {}).get("threads", {}).get("1") or {}).get("pipeline_words_per_second")

    def parameters(system: Optional[dict]) -> str:
        if not system:
            return "—"
        vectors = f" + {system['vectors'] / 1e6:.1f}M vectors" if system.get("vectors") else ""
        return f"{system['parameters'] / 1e6:.2f}M{vectors}"

    teacher, student = systems.get("teacher"), systems.get("student")
    t_wps, s_wps = words_per_second(teacher), words_per_second(student)
    speed_ratio = f"{s_wps / t_wps:.1f}x" if t_wps and s_wps else "—"
    param_ratio = (
        f"1/{teacher['parameters'] / student['parameters']:.1f}"
        if teacher and student and student.get("parameters")
        else "—"
    )
    return [
        "| words/s, 1 thread | " + " | ".join(_wps(words_per_second(s)) for s in found) + f" | {speed_ratio} |",
        "| parameters | " + " | ".join(parameters(s) for s in found) + f" | {param_ratio} |",
    ]


def _speed_models(speed: dict) -> str:
    """'the wnut16 n500-s0 models, ' when the student timed is a benchmark cell's, else ''."""
    parts = Path(((speed.get("systems") or {}).get("student") or {}).get("model", "")).parts
    if len(parts) >= 4 and parts[-1] == "model-best" and parts[-3].startswith("n"):
        return f"the {parts[-4]} {parts[-3]} models, "
    return ""


def readme_table(data: dict) -> str:
    """The README's headline table from a benchmark report (the content of ``metrics/benchmark.json``):
    per dataset, test F1 (mean ± std over seeds) at `README_SIZE` labeled and at the largest size
    measured, then words/s (1 thread) and parameters from the speed section. The markers are not included."""
    speed = data.get("speed")
    lines = [
        "Generated from `metrics/benchmark.json` by `python -m benchmarks readme` (also run by "
        f"`spacy project run benchmark-report`; do not edit by hand): the report of {data['date']}, "
        f"{data['cells']['count']} result files, details in `metrics/benchmark.md`. Entity F1 (%) on each "
        "dataset's held-out test split, mean ± std over seeds (each seed draws its own labeled sample); "
        "*student / teacher*: the full student's mean F1 as a share of the teacher's; *+ 25k tweets*: the "
        "same student with 24,961 real tweets added to its unlabeled text (the default run's setting, WNUT-16 "
        "only). Silver: the reference "
        "labels are en_core_web_md's predictions (agreement, not correctness; the md-vectors baseline shares "
        "the tagger's vectors)."
        + (
            f" Speed: {_speed_models(speed)}`nlp.pipe` on {speed['text']['n_words']:,} words, 1 thread, "
            f"measured {speed['date']} on {speed['machine']['cpu']} ({speed['machine']['cpus']} cores); "
            "parameters: trainable weights, static vectors apart."
            if speed
            else ""
        ),
        "",
        "| | " + " | ".join(head for _, _, head in README_COLUMNS) + " | student / teacher |",
        "|---|" + "---:|" * (len(README_COLUMNS) + 1),
    ]
    for name, agg in data["accuracy"].items():
        lines += _readme_accuracy_rows(name, agg)
    if speed:
        lines += _readme_speed_rows(speed)
    return "\n".join(lines)


def readme_block(text: str) -> str:
    """What stands between the results markers of a README's text (an error if they are missing)."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < 0 or end < start or text.count(README_START) != 1 or text.count(README_END) != 1:
        raise ValueError(f"the README needs one {README_START} line and one {README_END} line after it")
    return text[start + len(README_START) : end].strip("\n")


def replace_readme_block(text: str, table: str) -> str:
    """The README's text with ``table`` between the results markers."""
    readme_block(text)  # checks the markers
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    return f"{before}{README_START}\n{table}\n{README_END}{after}"


def write_readme_table(readme: Path, data: dict) -> bool:
    """Write `readme_table` of ``data`` into ``readme`` between the markers; True if the file changed."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf8")
    updated = replace_readme_block(text, readme_table(data))
    if updated != text:
        readme.write_text(updated, encoding="utf8")
    return updated != text
