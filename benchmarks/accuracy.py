"""The accuracy grid: every (dataset, labeled size, seed, system) trained and scored on the test split,
one resumable cell at a time.

A cell's result is ``metrics/benchmark/<dataset>/n<size>-s<seed>/<system>.json`` (scores, train
seconds, date, machine); a result that exists is never recomputed, so an interrupted or budgeted run
continues where it stopped. Models and corpora go under ``training/benchmark/<dataset>/n<size>-s<seed>/``:

    corpus/{train,dev,test,unlabeled}.spacy   labeled sample (size, seed), the rest of train unlabeled
    corpus/distill.spacy                      teacher logits on labeled + unlabeled docs (annotate)
    teacher/model-best                        shared by the three students of the cell
    student_full/, student_kd/, student_gold/, spacy_ner/   each with model-best and train.log

Systems (all trained with ``python -m spacy train`` in a subprocess, scored with ``spacy evaluate``):

- ``teacher``: configs/teacher.cfg on the labeled sample.
- ``student_full``: configs/student.cfg on the annotated corpus, default loss (gold + KD + pseudo-labels).
- ``student_kd``: same data, ``components.ner.loss.pseudo_label_weight 0``.
- ``student_gold``: ``kd_weight 0`` and ``pseudo_label_weight 0``, trained on the labeled sample only
  (with both weights 0 the unlabeled docs carry no signal; leaving them in would only change the
  number of optimizer steps per epoch and make the baseline wait for a teacher).
- ``spacy_ner``: spaCy's own default CNN ``ner`` (``spacy init config -p ner``, CPU, efficiency, no
  vectors) on the labeled sample.
- ``spacy_ner_vectors``: the same ``ner`` in spaCy's accuracy config (``-o accuracy``: wider, deeper
  tok2vec with static vectors) with en_core_web_md's vectors, on the labeled sample.
- ``variant.<name>``: a student variant of ``configs/student_variants.json`` (``TrainSettings.student_variants``):
  the full student's data and settings plus the variant's overrides, to check a candidate default on
  the test grid beside ``student_full`` (e.g. ``--systems student_full,variant.pl_half``).
- ``teacher_variant.<name>``: a teacher variant of ``configs/teacher_variants.json``
  (``TrainSettings.teacher_variants``): the teacher's settings plus the variant's overrides, on the labeled
  sample, selected like the teacher; the students still learn from ``teacher`` (e.g. ``--systems
  teacher,teacher_variant.features``, to choose a dataset's teacher settings on its dev).

The students get static vectors when ``TrainSettings.student_vectors`` is set (the project passes the
table built by ``python -m spacy_compact_ner vectors``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy_compact_ner.tools.assets import sha256_file

from . import SYSTEMS, TEACHER_VARIANT_PREFIX, VARIANT_PREFIX, system_label, teacher_variant_of, variant_of
from .common import Size, machine_info, now_iso, size_key, size_label, write_json, write_text
from .config_digest import settings_digest_of_file
from .datasets import BenchmarkDataset
from .doc_scores import encode_counts
from .runner import BenchmarkStepError, Budget, BudgetExhausted, Steps, changed_overrides, override_strings
from .schema import CELL_SCHEMA
from .selection import selection_for
from .time_cap import REGISTERED_NAME as TIME_CAP_CALLBACK
from .variants import Variant, read_variants, select_variants

DISTILLED = ("student_full", "student_kd")
STUDENT_LOSS_OVERRIDES: Dict[str, Dict[str, float]] = {
    "student_full": {},
    "student_kd": {"components.ner.loss.pseudo_label_weight": 0.0},
    "student_gold": {"components.ner.loss.kd_weight": 0.0, "components.ner.loss.pseudo_label_weight": 0.0},
}
# Set by the cell for every system; a variant may not change them.
CELL_DATA_KEYS = ("paths.train", "paths.dev", "system.seed")
SPACY_NER_CONFIG = "spacy_ner.cfg"
SPACY_NER_VECTORS_CONFIG = "spacy_ner_vectors.cfg"
# The wall-clock cap of the spaCy baselines: a callback loaded into `spacy train` with --code.
TIME_CAP_CODE = Path(__file__).with_name("time_cap.py")

Log = Callable[[str], None]


@dataclass
class TrainSettings:
    """How each system is trained. A size left at None is the config's own value (no override): the
    numbers live in the configs, and project.yml's vars, which the project passes, override them."""

    teacher_config: Path = Path("configs/teacher.cfg")
    student_config: Path = Path("configs/student.cfg")
    teacher_encoder: Path = Path("assets/minilm")
    teacher_epochs: Optional[int] = None
    teacher_batch_size: Optional[int] = None
    teacher_warmup_steps: Optional[int] = None
    teacher_total_steps: Optional[int] = None
    teacher_learn_rate: Optional[float] = None
    # -1: stop at the teacher's total_steps (the learning rate has decayed to 0 there); 0: no cap.
    teacher_max_steps: int = -1
    student_epochs: Optional[int] = None
    # max_epochs of the gold-only student, which trains on the labeled sample alone (None: the
    # config's own, not student_epochs: those are sized for the labeled + unlabeled docs)
    student_gold_epochs: Optional[int] = None
    # max_epochs of spaCy's two baselines (None: spaCy's own schedule, as `spacy init config` writes it)
    spacy_ner_epochs: Optional[int] = None
    spacy_ner_vectors_epochs: Optional[int] = None
    # Minutes after which a spaCy baseline stops and keeps its best checkpoint so far (0: no cap).
    spacy_ner_time_cap: float = 0.0
    # Static vectors of the students (a folder made by `spacy_compact_ner vectors`; None: no vectors)
    # and of the spacy_ner_vectors baseline (a pipeline with vectors).
    student_vectors: Optional[Path] = None
    baseline_vectors: Path = Path("assets/en_core_web_md")
    annotate_batch_size: int = 64
    gpu_id: int = -1
    teacher_set: Dict[str, str] = field(default_factory=dict)
    student_set: Dict[str, str] = field(default_factory=dict)
    spacy_ner_set: Dict[str, str] = field(default_factory=dict)
    keep_last: bool = False
    # Where the ``variant.<name>`` systems are defined (the student-variants file).
    student_variants: Path = Path("configs/student_variants.json")
    # Where the ``teacher_variant.<name>`` systems are defined (the teacher-variants file).
    teacher_variants: Path = Path("configs/teacher_variants.json")

    def student_variant(self, name: str) -> Variant:
        return select_variants(read_variants(self.student_variants), [name])[0]

    def teacher_variant(self, name: str) -> Variant:
        return select_variants(read_variants(self.teacher_variants), [name], config_only=True)[0]

    def teacher_overrides(self) -> Dict[str, object]:
        total_steps_key = "training.optimizer.learn_rate.total_steps"
        max_steps = self.teacher_max_steps
        if max_steps < 0:
            max_steps = self.teacher_total_steps
            if max_steps is None:
                max_steps = config_value(self.teacher_config, total_steps_key)
        sizes = {
            "training.max_epochs": self.teacher_epochs,
            "training.batcher.size": self.teacher_batch_size,
            "training.optimizer.learn_rate.warmup_steps": self.teacher_warmup_steps,
            total_steps_key: self.teacher_total_steps,
            "training.optimizer.learn_rate.initial_rate": self.teacher_learn_rate,
        }
        return {
            "paths.teacher_encoder": str(Path(self.teacher_encoder).resolve()),
            **given(sizes),
            "training.max_steps": max_steps,
            "training.logger.progress_bar": False,
            **self.teacher_set,
        }

    def student_overrides(self, system: str) -> Dict[str, object]:
        vectors: Dict[str, object] = {}
        if self.student_vectors is not None:
            vectors = {
                "paths.vectors": str(Path(self.student_vectors).resolve()),
                "components.ner.model.tok2vec.include_static_vectors": True,
            }
        epochs = self.student_gold_epochs if system == "student_gold" else self.student_epochs
        return {
            **given({"training.max_epochs": epochs}),
            "training.logger.progress_bar": False,
            **vectors,
            **STUDENT_LOSS_OVERRIDES[system],
            **self.student_set,
        }

    def spacy_ner_overrides(self, system: str = "spacy_ner") -> Dict[str, object]:
        epochs, vectors = self.spacy_ner_epochs, {}
        if system == "spacy_ner_vectors":
            epochs = self.spacy_ner_vectors_epochs
            vectors = {"paths.vectors": str(Path(self.baseline_vectors).resolve())}
        return {
            **given({"training.max_epochs": epochs}),
            "training.logger.progress_bar": False,
            **vectors,
            **self.spacy_ner_set,
        }


def given(overrides: Dict[str, Optional[object]]) -> Dict[str, object]:
    """The overrides whose value is set (None: keep the config's own value)."""
    return {key: value for key, value in overrides.items() if value is not None}


def config_value(config: Path, key: str) -> object:
    """A value of a training config by its dotted key (uninterpolated)."""
    from spacy.util import load_config

    section: object = load_config(config, interpolate=False)
    for part in key.split("."):
        section = section[part]  # type: ignore[index]
    return section


def spacy_ner_config_text(optimize: str = "efficiency") -> str:
    """spaCy's own NER training config: ``spacy init config -p ner -o OPTIMIZE`` (English, CPU).

    "efficiency" is the default CNN without vectors; "accuracy" adds static vectors (``paths.vectors``).
    """
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["ner"], optimize=optimize, gpu=False)
    return config.to_str()


# ---------------------------------------------------------------------------------------------
# One (dataset, size, seed) cell


def cell_name(size: Size, seed: int) -> str:
    return f"n{size_label(size)}-s{seed}"


class CellLocked(Exception):
    pass


class Cell:
    """The systems of one (dataset, size, seed): shared corpus and teacher, one result file each."""

    def __init__(
        self,
        dataset: BenchmarkDataset,
        size: Size,
        seed: int,
        *,
        metrics_dir: Path,
        work_dir: Path,
        settings: TrainSettings,
        steps: Steps,
        budget: Budget,
        log: Log,
    ) -> None:
        self.dataset, self.size, self.seed = dataset, size, seed
        self.name = cell_name(size, seed)
        self.results_dir = Path(metrics_dir) / dataset.name / self.name
        self.work = Path(work_dir) / dataset.name / self.name
        self.shared_dir = Path(work_dir)
        self.settings, self.steps, self.budget, self.log = settings, steps, budget, log
        self.corpus_dir = self.work / "corpus"
        self._stats: Optional[dict] = None
        self._teacher_error: Optional[str] = None
        self._told_changed: set = set()

    # -- paths and state

    def result_path(self, system: str) -> Path:
        return self.results_dir / f"{system}.json"

    def done(self, system: str) -> bool:
        """Whether ``system`` has its result and it ran the settings this grid would train it with: the same
        settings digest (`config_digest`: a changed default in its config file, ``--teacher-set``,
        ``--student-set`` or a variant's overrides trains it again; a teacher's changed overrides are named).
        A cell's distilled results from an earlier teacher are left out of the
        report until re-run."""
        path = self.result_path(system)
        if not path.is_file():
            return False
        recorded = json.loads(path.read_text())["config"]
        changed = ""
        if system == "teacher" or teacher_variant_of(system):
            changed = changed_overrides(
                recorded.get("overrides", {}), override_strings(self._teacher_overrides(system))
            )
        if not changed and self._settings(system) is not None:
            changed = self._changed_settings(system, recorded.get("settings_sha256"))
        if changed and system not in self._told_changed:
            self._told_changed.add(system)
            self._say(f"{system}: its result ran other settings ({changed}): to be run again")
        return not changed

    def _settings(self, system: str) -> Optional[Tuple[Path, Dict[str, object]]]:
        """The config and overrides a student or teacher system trains with here (None for spaCy's
        baselines); the digest leaves out its files and seed."""
        if system == "teacher" or teacher_variant_of(system):
            return self.settings.teacher_config, self._teacher_overrides(system)
        variant = variant_of(system)
        if system in DISTILLED or variant:
            spec = self.settings.student_variant(variant) if variant else None
            overrides = {
                **self.settings.student_overrides("student_full" if variant else system),
                **(spec.overrides if spec else {}),
            }
        elif system == "student_gold":
            overrides = self.settings.student_overrides(system)
        else:
            return None
        return self.settings.student_config, overrides

    def _digest(self, system: str) -> Optional[str]:
        settings = self._settings(system)
        return settings_digest_of_file(*settings) if settings is not None else None

    def _changed_settings(self, system: str, recorded: Optional[str]) -> str:
        """'' when a result's recorded settings digest (`config_digest`) is what this grid would train."""
        if recorded is None:
            return "its result does not record its settings"
        config, overrides = self._settings(system)  # type: ignore[misc]
        now = settings_digest_of_file(config, overrides)
        return "" if recorded == now else f"settings {recorded[:8]} -> {now[:8]}, {config} or its overrides"

    def _say(self, text: str) -> None:
        self.log(f"[{self.dataset.name} {self.name}] {text}")

    # -- lock (two invocations may share the grid, never a cell)

    def __enter__(self) -> "Cell":
        self.work.mkdir(parents=True, exist_ok=True)
        lock = self.work / ".lock"
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and _pid_alive(pid):
                    raise CellLocked(f"{self.work} is being worked on by process {pid}") from None
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise CellLocked(f"could not lock {self.work}")

    def __exit__(self, *exc) -> None:
        (self.work / ".lock").unlink(missing_ok=True)

    # -- corpus

    def corpus(self) -> dict:
        if self._stats is None:
            stats_path = self.corpus_dir / "corpus_stats.json"
            if not stats_path.is_file():
                self._say(f"corpus: {size_label(self.size)} labeled, seed {self.seed}")
                self.dataset.prepare(self.corpus_dir, size=self.size, seed=self.seed)
            self._stats = json.loads(stats_path.read_text())
        return self._stats

    # -- models

    def _trained(self, system: str) -> Optional[dict]:
        marker = self.work / system / "train_done.json"
        return json.loads(marker.read_text()) if marker.is_file() else None

    def _train(
        self,
        system: str,
        config: Path,
        overrides: Dict[str, object],
        docs: Sequence[Path],
        *,
        time_cap: float = 0.0,
        inputs_date: str = "",
        settings: Optional[str] = None,
    ) -> dict:
        """Train ``system`` once, evaluated on dev as the selection rule says for its training docs ``docs``;
        ``time_cap`` minutes (0: none) stop it early. A finished training is reused if it ran the same
        settings after its inputs were made (``inputs_date``: e.g. when the teacher annotated them) and, where
        ``settings`` (its `config_digest`) is given, the same filled config."""
        out = self.work / system
        rule = selection_for(config, overrides, docs)
        overrides = {"training.eval_frequency": rule.eval_frequency, **overrides}
        cap_marker = out / "time_cap.json"
        code = None
        if time_cap > 0:
            code = TIME_CAP_CODE
            overrides["training.before_update"] = {
                "@callbacks": TIME_CAP_CALLBACK,  # the name benchmarks/time_cap.py registers
                "minutes": float(time_cap),
                "marker": str(cap_marker.resolve()),
            }
        done = self._trained(system)
        if done is not None and (out / "model-best").is_dir():
            changed = changed_overrides(done.get("overrides", {}), override_strings(overrides))
            if settings is not None and done.get("settings_sha256") != settings:
                changed = "; ".join(filter(None, [changed, f"settings {done.get('settings_sha256', 'unrecorded')}"]))
            if not changed and done.get("date", "") >= inputs_date:
                return done
            why = f"ran other settings ({changed})" if changed else "was trained on earlier inputs"
            self._say(f"{system}: its model on disk {why}: training it again")
        self.budget.check()
        if out.exists():
            shutil.rmtree(out)  # an interrupted training, or one with other settings: start again
        out.mkdir(parents=True)
        self._say(
            f"training {system}, dev evaluation every {overrides['training.eval_frequency']} steps "
            f"(shortest epoch {rule.shortest_epoch} steps; log: {out / 'train.log'})"
        )
        start = time.perf_counter()
        try:
            seconds = self.steps.train(config, out, overrides, gpu_id=self.settings.gpu_id, code=code)
        except BenchmarkStepError:
            if not cap_marker.is_file():
                raise
            seconds = time.perf_counter() - start
        selection = "best"
        capped = json.loads(cap_marker.read_text()) if cap_marker.is_file() else None
        if capped:
            selection = f"best within a {time_cap:g}-min time cap (stopped at step {capped['step']})"
        if not (out / "model-best").is_dir():
            if not (out / "model-last").is_dir():
                raise BenchmarkStepError(f"{system}: spacy train wrote neither model-best nor model-last in {out}")
            (out / "model-last").rename(out / "model-best")  # no evaluation happened (tiny runs)
            selection = "last (no dev evaluation during training)"
        if not self.settings.keep_last and (out / "model-last").is_dir():
            shutil.rmtree(out / "model-last")
        done = {
            "seconds": seconds,
            "model_selection": selection,
            "selection_rule": {**rule.to_dict(), "eval_frequency": overrides["training.eval_frequency"]},
            **({"time_cap": capped} if capped else {}),
            "date": now_iso(),
            "config": str(config),
            "overrides": override_strings(overrides),
            **({"settings_sha256": settings} if settings is not None else {}),
        }
        write_json(out / "train_done.json", done)
        self._say(f"trained {system} in {seconds:,.0f} s")
        return done

    def _teacher(self) -> dict:
        if self._teacher_error:
            raise BenchmarkStepError(f"the teacher of this cell failed: {self._teacher_error}")
        try:
            return self._train_teacher()
        except BenchmarkStepError as err:
            self._teacher_error = str(err).splitlines()[0]
            raise

    def _train_teacher(self, system: str = "teacher") -> dict:
        """Train (and score) the cell's teacher, or with a ``teacher_variant.<name>`` system that teacher
        variant: the same settings plus the variant's overrides."""
        self.corpus()
        train = self._train(
            system,
            self.settings.teacher_config,
            self._teacher_overrides(system),
            [self.corpus_dir / "train.spacy"],
            settings=self._digest(system),
        )
        if not self.done(system):  # always score a teacher we have: one evaluation
            self._write_result(system, train, train_data="labeled")
        return train

    def _teacher_overrides(self, system: str = "teacher") -> Dict[str, object]:
        """The overrides of the cell's teacher, or of a ``teacher_variant.<name>``: the teacher's plus its own."""
        variant = teacher_variant_of(system)
        return {
            "paths.train": str(self.corpus_dir / "train.spacy"),
            "paths.dev": str(self.corpus_dir / "dev.spacy"),
            "system.seed": self.seed,
            **self.settings.teacher_overrides(),
            **(self.settings.teacher_variant(variant).overrides if variant else {}),
        }

    def _transfer_docs(self, spec: Optional[Variant] = None) -> List[Path]:
        """The docs of the transfer set: labeled + unlabeled, their augmented copies and extra text."""
        docs = [self.corpus_dir / "train.spacy", self.corpus_dir / "unlabeled.spacy"]
        if spec is not None and spec.augment_factor:
            docs.append(self.corpus_dir / f"augmented-x{spec.augment_factor}.spacy")
        if spec is not None and spec.unlabeled_text:
            docs.append(self.corpus_dir / f"extra-{self._extra_key(spec)}.spacy")
        return docs

    def _extra_key(self, spec: Variant) -> str:
        """Names a variant's extra unlabeled docs by what they are made of (the files' contents and the cap),
        so variants that add the same text share them and their annotation."""
        missing = [path for path in spec.unlabeled_text if not Path(path).is_file()]
        if missing:
            raise FileNotFoundError(
                f"variant {spec.name}: unlabeled text not found: {', '.join(missing)} "
                "(the tweets come from `python -m benchmarks fetch tweets`)"
            )
        digest = hashlib.sha256(repr(spec.max_unlabeled).encode())
        for path in spec.unlabeled_text:
            digest.update(sha256_file(Path(path)).encode())
        return digest.hexdigest()[:10]

    def _extra_docs(self, spec: Variant) -> dict:
        """Write the variant's extra unlabeled docs (one per line of its text files, at least 10 characters; a
        line whose text is a doc of the cell's corpus is dropped; a uniform sample of ``max_unlabeled`` of them,
        seeded by the cell's seed, where set) and return their statistics."""
        import spacy

        from spacy_compact_ner.tools.corpus import read_docbin, reservoir_sample, text_source_units, write_docbin
        from spacy_compact_ner.tools.formats import text_key

        path = self._transfer_docs(spec)[-1]
        stats_path = path.with_suffix(".json")
        if path.is_file() and stats_path.is_file():
            return json.loads(stats_path.read_text())
        nlp = spacy.blank("en")
        splits = [self.corpus_dir / f"{name}.spacy" for name in ("train", "dev", "test", "unlabeled")]
        known = {text_key(doc.text) for split in splits for doc in read_docbin(split, nlp.vocab)}
        dropped: Counter = Counter()

        def stream() -> Iterator[Tuple[str, str]]:
            for source in spec.unlabeled_text:
                for text in text_source_units(source, nlp, unit="line", min_chars=10):
                    key = text_key(text)
                    if key in known:
                        dropped[source] += 1
                    else:
                        known.add(key)
                        yield source, text

        texts = reservoir_sample(stream(), spec.max_unlabeled, self.seed)
        write_docbin((nlp.make_doc(text) for _, text in texts), path)
        counts = Counter(source for source, _ in texts)
        stats = {
            "docs": len(texts),
            "by_source": {source: counts[source] for source in spec.unlabeled_text},
            "dropped_as_known": dict(dropped),
            "max_unlabeled": spec.max_unlabeled,
        }
        write_json(stats_path, stats)
        self._say(f"extra unlabeled text: {len(texts):,} docs ({', '.join(f'{n:,} {s}' for s, n in counts.items())})")
        return stats

    def _distill_path(self, spec: Optional[Variant] = None) -> Path:
        name = "distill"
        if spec is not None:
            name += f"-aug{spec.augment_factor}" if spec.augment_factor else ""
            name += f"-cf{spec.crossfit_folds}" if spec.crossfit_folds else ""
            name += f"-x{self._extra_key(spec)}" if spec.unlabeled_text else ""
        return self.corpus_dir / f"{name}.spacy"

    def _distill(self, spec: Optional[Variant] = None) -> dict:
        """The teacher's annotation of the transfer set: with a variant's ``augment_factor``, augmented copies
        of each doc (`spacy_compact_ner.tools.augment`, seeded by the cell's seed); with its ``unlabeled_text``,
        extra docs (`_extra_docs`). With ``crossfit_folds``, that many teachers trained on the other folds of the
        labeled sample annotate it instead (`spacy_compact_ner.tools.crossfit`, folds seeded by the cell's
        seed): each evaluates on dev every ``(k - 1) / k`` of the cell teacher's interval, as its epochs are
        that much shorter."""
        augment_factor = spec.augment_factor if spec is not None else 0
        crossfit_folds = spec.crossfit_folds if spec is not None else 0
        distill = self._distill_path(spec)
        marker = distill.with_name(distill.stem + "_done.json")
        teacher = self._teacher()
        if marker.is_file() and distill.is_file():
            done = json.loads(marker.read_text())
            # (markers written before they recorded their teacher are trusted)
            if done.get("teacher_date", teacher["date"]) == teacher["date"]:
                return done
            self._say(f"{distill.name} was annotated by an earlier teacher of this cell: annotating it again")
        self.budget.check()
        augment: Dict[str, object] = {}
        if augment_factor:
            from spacy_compact_ner.tools.augment import OPERATIONS, augment_corpus

            vectors = self.settings.student_vectors
            operations = OPERATIONS if vectors is not None else tuple(op for op in OPERATIONS if op != "synonym")
            start = time.perf_counter()
            stats = augment_corpus(
                self.corpus_dir / "train.spacy",
                self.corpus_dir / "unlabeled.spacy",
                self._transfer_docs(spec)[2],
                factor=augment_factor,
                seed=self.seed,
                operations=operations,
                vectors=vectors,
            )
            augment = {"factor": augment_factor, "copies": stats.copies, "by_operation": stats.by_operation}
            augment["seconds"] = time.perf_counter() - start
            self._say(f"augmented: {stats.copies:,} copies of {stats.sources:,} docs")
        extra = self._extra_docs(spec) if spec is not None and spec.unlabeled_text else None
        crossfit: Dict[str, object] = {}
        if crossfit_folds:
            teacher_every = int((teacher.get("selection_rule") or {}).get("eval_frequency", 100))
            every = max(1, teacher_every * (crossfit_folds - 1) // crossfit_folds)
            crossfit = {"folds": crossfit_folds, "eval_frequency": every}
            self._say(
                f"annotating the transfer set with {crossfit_folds} cross-fitted teachers "
                f"(log: {distill.with_suffix('.log')})"
            )
            seconds = self.steps.crossfit(
                self.corpus_dir / "train.spacy",
                self._transfer_docs(spec)[1:],
                distill,
                config=self.settings.teacher_config,
                dev=self.corpus_dir / "dev.spacy",
                folds=crossfit_folds,
                seed=self.seed,
                work_dir=self.work / f"crossfit-{crossfit_folds}",
                overrides={
                    "system.seed": self.seed,
                    **self.settings.teacher_overrides(),
                    "training.eval_frequency": every,
                },
                batch_size=self.settings.annotate_batch_size,
                gpu_id=self.settings.gpu_id,
            )
        else:
            self._say(f"annotating the transfer set with the teacher (log: {self.corpus_dir / 'annotate.log'})")
            seconds = self.steps.annotate(
                self.work / "teacher" / "model-best",
                self._transfer_docs(spec),
                distill,
                batch_size=self.settings.annotate_batch_size,
                gpu_id=self.settings.gpu_id,
            )
        done = {
            "seconds": seconds,
            "teacher_train_seconds": teacher["seconds"],
            "teacher_date": teacher["date"],
            "date": now_iso(),
        }
        if augment:
            done["augment"] = augment
        if crossfit:
            done["crossfit"] = crossfit
        if extra is not None:
            done["extra_unlabeled"] = extra
        write_json(marker, done)
        return done

    def _spacy_ner_config(self, system: str) -> Path:
        vectors = system == "spacy_ner_vectors"
        path = self.shared_dir / "configs" / (SPACY_NER_VECTORS_CONFIG if vectors else SPACY_NER_CONFIG)
        if not path.is_file():
            write_text(path, spacy_ner_config_text("accuracy" if vectors else "efficiency"))
        return path

    # -- results

    def _write_result(self, system: str, train: dict, *, train_data: str, upstream: Optional[dict] = None) -> None:
        stats = self.corpus()
        model = self.work / system / "model-best"
        test = self.corpus_dir / "test.spacy"
        scores_path = self.work / system / "test_scores.json"
        self._say(f"evaluating {system} on test")
        scores = self.steps.evaluate(model, test, scores_path, gpu_id=self.settings.gpu_id)
        for key in ("ents_f", "ents_p", "ents_r"):
            if not isinstance(scores.get(key), (int, float)):
                raise BenchmarkStepError(f"{system}: spacy evaluate gave no {key} (does the test set have entities?)")
        config_path = Path(train["config"])
        result = {
            "schema": CELL_SCHEMA,
            "dataset": self.dataset.name,
            "size": self.size,
            "seed": self.seed,
            "system": system,
            "description": system_label(system),
            "n_labeled": stats["n_labeled"],
            "n_unlabeled": stats["splits"]["unlabeled"]["docs"],
            "n_test": stats["splits"]["test"]["docs"],
            "test_sha256": sha256_file(test),
            **({"test_doc_counts": encode_counts(scores["doc_counts"])} if "doc_counts" in scores else {}),
            "scores": {
                "ents_f": float(scores["ents_f"]),
                "ents_p": float(scores["ents_p"]),
                "ents_r": float(scores["ents_r"]),
                "ents_per_type": {
                    label: {k: float(v) for k, v in prf.items() if k in ("p", "r", "f")}
                    for label, prf in (scores.get("ents_per_type") or {}).items()
                },
            },
            "dev_scores": dev_scores(model),
            "train_seconds": float(train["seconds"]),
            "upstream_seconds": upstream or {},
            "train_data": train_data,
            "model_selection": train.get("model_selection", "best"),
            **({"selection_rule": train["selection_rule"]} if "selection_rule" in train else {}),
            "config": {
                "file": str(config_path),
                "sha256": sha256_file(config_path) if config_path.is_file() else None,
                "overrides": train.get("overrides", {}),
                **({"settings_sha256": train["settings_sha256"]} if "settings_sha256" in train else {}),
            },
            "model": str(model),
            "date": now_iso(),
            "machine": machine_info(),
        }
        write_json(self.result_path(system), result)
        self.budget.results += 1
        self._say(f"{system}: test F1 {100 * result['scores']['ents_f']:.1f} -> {self.result_path(system)}")

    def _student_train_overrides(self, system: str, spec: Optional[Variant]) -> Optional[Dict[str, object]]:
        """The overrides a student system trains with in this cell, its files included (None for the teacher
        and spaCy's baselines)."""
        settings = self._settings(system)
        if settings is None or system == "teacher" or teacher_variant_of(system):
            return None
        train = self.corpus_dir / "train.spacy" if system == "student_gold" else self._distill_path(spec)
        return {
            "paths.train": str(train),
            "paths.dev": str(self.corpus_dir / "dev.spacy"),
            "system.seed": self.seed,
            **settings[1],
        }

    def _adopt(self, system: str, overrides: Dict[str, object], digest: str) -> bool:
        """Take the result of another system of this cell that ran this very training: the same settings
        digest and the same files (transfer set, dev, vectors), as the variant that measured a network
        before it became the default. The copy names where it came from (``same_training_as``) and keeps
        its date, so a teacher re-run since leaves both out of the report alike."""

        def files(recorded: Dict[str, str]) -> Dict[str, str]:
            return {key: value for key, value in recorded.items() if key.startswith("paths.")}

        mine = files(override_strings(overrides))
        for path in sorted(self.results_dir.glob("*.json")):
            other = json.loads(path.read_text())
            config = other.get("config") or {}
            if (
                other.get("system") == system
                or config.get("settings_sha256") != digest
                or files(config.get("overrides", {})) != mine
            ):
                continue
            source = other.get("same_training_as", other["system"])
            write_json(
                self.result_path(system),
                {**other, "system": system, "description": system_label(system), "same_training_as": source},
            )
            self.budget.results += 1
            self._say(f"{system}: the same training as {source} (settings {digest[:8]}): its result taken")
            return True
        return False

    def run_system(self, system: str) -> None:
        if self.done(system):
            return
        self.corpus()
        if system == "teacher":
            self._teacher()
            return
        if teacher_variant_of(system):
            self._train_teacher(system)
            return
        variant = variant_of(system)
        spec = self.settings.student_variant(variant) if variant else None
        overrides = self._student_train_overrides(system, spec)
        digest = self._digest(system)
        if overrides is not None and digest is not None and self._adopt(system, overrides, digest):
            return
        if system in DISTILLED or variant:
            distill = self._distill(spec)
            train = self._train(
                system,
                self.settings.student_config,
                overrides,  # type: ignore[arg-type]
                self._transfer_docs(spec),  # the docs the distill file holds
                inputs_date=distill["date"],
                settings=digest,
            )
            # A cross-fitted transfer set's seconds include its fold teachers' training.
            annotation = "crossfit" if "crossfit" in distill else "annotate"
            upstream = {"teacher_train": float(distill["teacher_train_seconds"]), annotation: float(distill["seconds"])}
            if "augment" in distill:
                upstream["augment"] = float(distill["augment"]["seconds"])
            self._write_result(system, train, train_data="distill", upstream=upstream)
        elif system == "student_gold":
            train = self._train(
                system,
                self.settings.student_config,
                overrides,  # type: ignore[arg-type]
                [self.corpus_dir / "train.spacy"],
                settings=digest,
            )
            self._write_result(system, train, train_data="labeled")
        elif system in ("spacy_ner", "spacy_ner_vectors"):
            if system == "spacy_ner_vectors" and not (Path(self.settings.baseline_vectors) / "vocab").is_dir():
                raise FileNotFoundError(
                    f"vectors of the spacy_ner_vectors baseline not found: {self.settings.baseline_vectors} "
                    "(fetch it with `python -m benchmarks fetch en_core_web_md`)"
                )
            train = self._train(
                system,
                self._spacy_ner_config(system),
                {
                    "paths.train": str(self.corpus_dir / "train.spacy"),
                    "paths.dev": str(self.corpus_dir / "dev.spacy"),
                    "system.seed": self.seed,
                    **self.settings.spacy_ner_overrides(system),
                },
                [self.corpus_dir / "train.spacy"],
                time_cap=self.settings.spacy_ner_time_cap,
            )
            self._write_result(system, train, train_data="labeled")
        else:
            raise ValueError(f"unknown system {system!r} (known: {', '.join(SYSTEMS)})")


def dev_scores(model: Path) -> Dict[str, float]:
    """The dev scores ``spacy train`` recorded for the saved model (the split it was selected on):
    ents_f, ents_p and ents_r from its meta.json, or {} when it has none."""
    meta = Path(model) / "meta.json"
    if not meta.is_file():
        return {}
    performance = json.loads(meta.read_text(encoding="utf8")).get("performance") or {}
    return {
        key: float(performance[key])
        for key in ("ents_f", "ents_p", "ents_r")
        if isinstance(performance.get(key), (int, float))
    }


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------
# The grid


@dataclass
class GridResult:
    written: List[str] = field(default_factory=list)
    already_done: List[str] = field(default_factory=list)
    plan: List[Tuple[str, Dict[str, str]]] = field(default_factory=list)  # with plan_only
    remaining: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    locked: List[str] = field(default_factory=list)
    stopped_by: Optional[str] = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def grid_order(sizes: Iterable[Size], seeds: Iterable[int]) -> List[tuple]:
    """Seed-major order: every size with the first seed, then the next seed, so a partial grid has a
    whole learning curve early."""
    sizes = sorted(set(sizes), key=size_key)
    return [(size, seed) for seed in seeds for size in sizes]


def needs_teacher(system: str) -> bool:
    """Whether a system trains (or is) the cell's teacher, or a teacher variant."""
    return system == "teacher" or system in DISTILLED or bool(variant_of(system) or teacher_variant_of(system))


def order_systems(
    systems: Iterable[str],
    student_variants: Path = TrainSettings.student_variants,
    teacher_variants: Path = TrainSettings.teacher_variants,
) -> List[str]:
    """The chosen systems in grid order: the built-in ones, then ``variant.<name>`` systems, whose
    names must be in the ``student_variants`` file, then ``teacher_variant.<name>`` systems (names in
    ``teacher_variants``; variants that change the transfer set are refused)."""
    chosen = list(dict.fromkeys(systems))
    unknown = [s for s in chosen if s not in SYSTEMS and not variant_of(s) and not teacher_variant_of(s)]
    if unknown:
        raise ValueError(
            f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}, {VARIANT_PREFIX}<student variant> "
            f"or {TEACHER_VARIANT_PREFIX}<teacher variant>"
        )
    variants = [s for s in chosen if variant_of(s)]
    teachers = [s for s in chosen if teacher_variant_of(s)]
    _check_variants(student_variants, [variant_of(s) for s in variants], "student", "labeled sample and unlabeled docs")
    _check_variants(teacher_variants, [teacher_variant_of(s) for s in teachers], "teacher", "labeled sample", True)
    return [s for s in SYSTEMS if s in chosen] + variants + teachers


def _check_variants(path: Path, names: Sequence[str], kind: str, data: str, config_only: bool = False) -> None:
    """The named variants exist in ``path`` and leave the cell's data alone; ``config_only`` (teacher
    variants): they leave the transfer set alone too (`select_variants`)."""
    if not names:
        return
    for variant in select_variants(read_variants(path), names, config_only=config_only):
        keys = sorted(key for key in variant.overrides if key in CELL_DATA_KEYS)
        if keys:
            raise ValueError(
                f"{kind} variant {variant.name!r} sets {keys}: "
                f"in the benchmark every system trains on its cell's {data}"
            )


def run_grid(
    dataset: BenchmarkDataset,
    *,
    sizes: Sequence[Size],
    seeds: Sequence[int],
    systems: Sequence[str] = SYSTEMS,
    metrics_dir: Path = Path("metrics/benchmark"),
    work_dir: Path = Path("training/benchmark"),
    settings: Optional[TrainSettings] = None,
    max_cells: int = 0,
    time_budget_s: float = 0.0,
    steps: Optional[Steps] = None,
    log: Log = print,
    plan_only: bool = False,
) -> GridResult:
    """Compute the missing results of the grid, cell by cell, within the budget.

    plan_only (bool): Train nothing; only fill the result's ``plan``: each cell's systems as ``done``,
        ``todo`` or ``stale`` (a teacher result that ran other settings: it would be trained again).

    max_cells (int): Stop after writing this many result files (0: no limit).
    time_budget_s (float): Start no new training or annotation after this many seconds (0: no limit);
        a step already running is finished.
    RETURNS (GridResult): What was written, already there, left to do, failed or locked.
    """
    settings = settings or TrainSettings()
    steps = steps or Steps()
    systems = order_systems(systems, settings.student_variants, settings.teacher_variants)
    budget = Budget(max_cells, time_budget_s)
    result = GridResult()
    start = time.monotonic()
    cells = [
        Cell(
            dataset,
            size,
            seed,
            metrics_dir=metrics_dir,
            work_dir=work_dir,
            settings=settings,
            steps=steps,
            budget=budget,
            log=log,
        )
        for size, seed in grid_order(sizes, seeds)
    ]
    if plan_only:
        for cell in cells:
            states = {
                s: "done" if cell.done(s) else "stale" if cell.result_path(s).is_file() else "todo" for s in systems
            }
            result.plan.append((cell.name, states))
        return result
    before = {(cell.name, s) for cell in cells for s in systems if cell.done(s)}
    failed = set()
    for cell in cells:
        todo = [s for s in systems if not cell.done(s)]
        if not todo or budget.reason:
            continue
        try:
            with cell:
                for system in todo:
                    if cell.done(system):  # e.g. the teacher, scored while a student needed it
                        continue
                    try:
                        cell.run_system(system)
                    except (BenchmarkStepError, FileNotFoundError, ValueError) as err:
                        failed.add((cell.name, system))
                        result.failed.append(f"{dataset.name}/{cell.name}/{system}: {err}")
                        log(f"[{dataset.name} {cell.name}] FAILED {system}: {err}")
        except BudgetExhausted:
            pass
        except CellLocked as locked:
            failed.update((cell.name, s) for s in todo)
            result.locked.append(f"{dataset.name}/{cell.name}: {locked}")
            log(f"[{dataset.name} {cell.name}] skipped: {locked}")
    for cell in cells:
        for system in systems:
            key = f"{dataset.name}/{cell.name}/{system}"
            if (cell.name, system) in before:
                result.already_done.append(key)
            elif cell.done(system):
                result.written.append(key)
            elif (cell.name, system) not in failed:
                result.remaining.append(key)
    result.seconds = time.monotonic() - start
    result.stopped_by = budget.reason
    return result
