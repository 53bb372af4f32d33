"""Cross-fitted annotation: teacher distributions on the labeled docs from teachers that never saw them.

A teacher fine-tuned on a few hundred docs has memorised them: on its own training docs its
distributions carry little more than the gold tags, so distilling there adds nothing. Here the labeled
docs are split into k folds (seeded); teacher i trains on the other k-1 folds and annotates fold i;
the unlabeled (and augmented) docs get the mean of the k teachers' distributions (``annotate``'s
ensemble). The labeled docs keep their gold entities, as with one teacher.

Each fold's teacher is kept under ``WORK/fold<i>/teacher`` with a record of what it was trained from, so
an interrupted run continues with the next fold; a fold whose data or settings changed is trained again.
Cost: k teacher trainings on (k-1)/k of the labeled docs each, and k teacher passes over the unlabeled docs.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy
import spacy
from spacy.tokens import DocBin

from ..store import read_docbin
from .annotate import _atomic_docbin, annotate, merge_docbins
from .assets import sha256_file

Log = Callable[[str], None]


@dataclass
class FoldResult:
    fold: int
    train_docs: int
    heldout_docs: int
    teacher: str
    dev_f1: Optional[float]
    train_seconds: float
    reused: bool


@dataclass
class CrossfitStats:
    folds: List[FoldResult] = field(default_factory=list)
    labeled_docs: int = 0
    unlabeled_docs: int = 0
    seconds: float = 0.0


def fold_ids(n_docs: int, k: int, seed: int) -> numpy.ndarray:
    """The fold (0..k-1) of each of ``n_docs`` docs: a seeded permutation dealt round-robin, so fold
    sizes differ by at most one."""
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {k}")
    if n_docs < k:
        raise ValueError(f"{n_docs} labeled docs cannot be split into {k} folds")
    folds = numpy.empty(n_docs, dtype="int64")
    folds[numpy.random.default_rng(seed).permutation(n_docs)] = numpy.arange(n_docs) % k
    return folds


def write_folds(labeled: Path, work_dir: Path, k: int, seed: int) -> List[Dict[str, Any]]:
    """Write ``fold<i>/train.spacy`` (the other folds) and ``fold<i>/heldout.spacy`` (fold i) under
    ``work_dir``; RETURNS each fold's record (paths, doc counts, checksums of what was written)."""
    nlp = spacy.blank("en")
    docs = list(read_docbin(labeled).get_docs(nlp.vocab))
    folds = fold_ids(len(docs), k, seed)
    records = []
    for i in range(k):
        folder = work_dir / f"fold{i}"
        folder.mkdir(parents=True, exist_ok=True)
        record: Dict[str, Any] = {"fold": i}
        for name, keep in (("train", folds != i), ("heldout", folds == i)):
            path = folder / f"{name}.spacy"
            _atomic_docbin(DocBin(docs=[d for d, kept in zip(docs, keep) if kept], store_user_data=True), path)
            record[name] = str(path)
            record[f"{name}_docs"] = int(keep.sum())
            record[f"{name}_sha256"] = sha256_file(path)
        records.append(record)
    return records


def crossfit_annotate(
    labeled: Path,
    output: Path,
    *,
    config: Path,
    dev: Path,
    unlabeled: Sequence[Path] = (),
    folds: int = 5,
    seed: int = 0,
    work_dir: Path = Path("training/crossfit"),
    overrides: Optional[Dict[str, Any]] = None,
    batch_size: int = 64,
    gpu_id: int = -1,
    log: Log = print,
) -> CrossfitStats:
    """Train ``folds`` teachers on k-1 folds of ``labeled`` each and write the cross-fitted ``output``.

    labeled (Path): The labeled training docs (.spacy, gold entities).
    output (Path): The annotated DocBin (labeled docs first, then the unlabeled ones), written when complete.
    config (Path): The teacher's training config (configs/teacher.cfg).
    dev (Path): The dev docs every fold's teacher selects its checkpoint on.
    unlabeled (Sequence[Path]): Docs without gold (.spacy or .txt, as for ``annotate``); empty files are skipped.
    seed (int): Seed of the fold split (the teachers' own seed is the config's ``system.seed``).
    overrides (Dict[str, Any]): Config overrides of every fold's teacher (e.g. ``paths.teacher_encoder``).
    """
    from spacy.cli.train import train as spacy_train

    for path in (labeled, config, dev, *unlabeled):
        if not Path(path).exists():
            raise FileNotFoundError(f"Cross-fit input not found: {path}")
    start = time.perf_counter()
    work_dir = Path(work_dir)
    overrides = dict(overrides or {})
    stats = CrossfitStats()
    teachers: List[Path] = []
    annotated: List[Path] = []
    settings = {"config_sha256": sha256_file(config), "dev_sha256": sha256_file(dev), "overrides": overrides}
    for record in write_folds(Path(labeled), work_dir, folds, seed):
        i = record["fold"]
        folder = work_dir / f"fold{i}"
        teacher_dir = folder / "teacher"
        done = folder / "teacher.json"
        wanted = {**settings, "train_sha256": record["train_sha256"], "gpu_id": gpu_id}
        previous = json.loads(done.read_text()) if done.is_file() else {}
        reused = previous.get("settings") == wanted and (teacher_dir / "model-best").is_dir()
        if reused:
            log(f"[crossfit] fold {i + 1}/{folds}: teacher already trained ({teacher_dir / 'model-best'})")
            seconds = previous["train_seconds"]
        else:
            log(f"[crossfit] fold {i + 1}/{folds}: training the teacher on {record['train_docs']} docs")
            if teacher_dir.exists():
                shutil.rmtree(teacher_dir)
            done.unlink(missing_ok=True)
            began = time.perf_counter()
            fold_overrides = {**overrides, "paths.train": record["train"], "paths.dev": str(dev)}
            spacy_train(Path(config), teacher_dir, overrides=fold_overrides, use_gpu=gpu_id)
            seconds = time.perf_counter() - began
            done.write_text(json.dumps({"settings": wanted, "train_seconds": seconds}, indent=2))
        best = teacher_dir / "model-best"
        heldout_out = folder / "heldout-annotated.spacy"
        log(f"[crossfit] fold {i + 1}/{folds}: annotating its {record['heldout_docs']} held-out docs")
        annotate(
            best, [Path(record["heldout"])], heldout_out, batch_size=batch_size, gpu_id=gpu_id, show_progress=False
        )
        teachers.append(best)
        annotated.append(heldout_out)
        stats.labeled_docs += record["heldout_docs"]
        stats.folds.append(
            FoldResult(i, record["train_docs"], record["heldout_docs"], str(best), _dev_f1(best), seconds, reused)
        )
    inputs = [Path(p) for p in unlabeled if not _is_empty(Path(p))]
    if inputs:
        unlabeled_out = work_dir / "unlabeled-annotated.spacy"
        log(f"[crossfit] annotating the unlabeled docs with the mean of the {folds} teachers")
        result = annotate(
            teachers[0], inputs, unlabeled_out, batch_size=batch_size, gpu_id=gpu_id, ensemble=teachers[1:]
        )
        stats.unlabeled_docs = result.docs
        annotated.append(unlabeled_out)
    merge_docbins(annotated, Path(output))
    stats.seconds = time.perf_counter() - start
    record = {**asdict(stats), "folds_seed": seed, "labeled": str(labeled), "unlabeled": [str(p) for p in inputs]}
    Path(str(output) + ".json").write_text(json.dumps(record, indent=2))
    return stats


def _dev_f1(model: Path) -> Optional[float]:
    meta = model / "meta.json"
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("performance", {}).get("ents_f")


def _is_empty(path: Path) -> bool:
    """A .spacy file with no docs (e.g. ``augment --factor 0``'s output)."""
    return path.suffix == ".spacy" and path.is_file() and len(read_docbin(path)) == 0
