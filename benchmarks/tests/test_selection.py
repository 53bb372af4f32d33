"""The model-selection rule: how often each system evaluates on dev, the time cap of spaCy's
baselines, and the report leaving results selected off the rule out of its targets."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from benchmarks.report import accuracy_targets, aggregate_dataset
from benchmarks.runner import BenchmarkStepError
from benchmarks.selection import (
    MAX_EVAL_INTERVAL,
    backfill_selection,
    config_version,
    epoch_steps,
    off_rule,
    selection_for,
)
from benchmarks.tests.test_benchmark import FakeSteps, _grid
from benchmarks.tests.util import ON_RULE
from benchmarks.time_cap import TimeCapReached, create_time_cap
from tests.fixtures import toy_sentences

TRAINING = """
[paths]
train = null
dev = null

[training]
max_epochs = {epochs}
max_steps = {steps}
eval_frequency = 200

[training.batcher]
{batcher}
"""
BY_SEQUENCE = '@batchers = "spacy.batch_by_sequence.v1"\nsize = 4\nget_length = null'
BY_WORDS = """@batchers = "spacy.batch_by_words.v1"
discard_oversize = false
tolerance = 0.2
get_length = null

[training.batcher.size]
@schedules = "compounding.v1"
start = 10
stop = 100
compound = 1.5
t = 0.0"""


def _config(tmp_path: Path, batcher: str, *, epochs: int = 0, steps: int = 0) -> Path:
    path = tmp_path / "train.cfg"
    path.write_text(TRAINING.format(epochs=epochs, steps=steps, batcher=batcher))
    return path


def _docs(path: Path, lengths) -> Path:
    vocab = Vocab()
    DocBin(docs=[Doc(vocab, words=["w"] * n) for n in lengths]).to_disk(path)
    return path


def test_epoch_steps_replay_the_configs_batcher(tmp_path):
    assert epoch_steps(_config(tmp_path, BY_SEQUENCE, epochs=3), {}, [5] * 10) == [3, 3, 3]
    # a growing batch size: the later epochs are shorter, and the shortest one sets the interval
    words = epoch_steps(_config(tmp_path, BY_WORDS, steps=60), {}, [10] * 30)
    assert sum(words) >= 60 and words[0] > words[-1] and min(words) == words[-1] == 3
    rule = selection_for(_config(tmp_path, BY_WORDS, steps=60), {}, [_docs(tmp_path / "a.spacy", [10] * 30)])
    assert (rule.eval_frequency, rule.shortest_epoch, rule.first_epoch) == (3, 3, words[0])
    # overrides count (as `spacy train` applies them) and several files are one corpus
    files = [_docs(tmp_path / "b.spacy", [5] * 400), _docs(tmp_path / "c.spacy", [5] * 400)]
    long = selection_for(_config(tmp_path, BY_SEQUENCE), {"training.max_epochs": "2"}, files)
    assert long.shortest_epoch == 200 and long.eval_frequency == MAX_EVAL_INTERVAL
    with pytest.raises(ValueError, match="no training docs"):
        epoch_steps(_config(tmp_path, BY_SEQUENCE, epochs=1), {}, [0, 0])


def test_off_rule():
    assert off_rule({"selection_rule": ON_RULE}) is None
    assert off_rule({}) == "selection not recorded"
    late = {**ON_RULE, "eval_frequency": 35, "shortest_epoch_steps": 11}
    assert off_rule({"selection_rule": late}) == "evaluated every 35 steps, its shortest epoch 11"
    capped = {**ON_RULE, "eval_frequency": 150, "shortest_epoch_steps": 400}
    assert "150" in off_rule({"selection_rule": capped})  # at most every MAX_EVAL_INTERVAL steps


def test_time_cap_callback(tmp_path):
    marker = tmp_path / "cap.json"
    create_time_cap(60.0, str(marker))(None, {"step": 3, "epoch": 0})  # within the cap: nothing
    assert not marker.exists()
    with pytest.raises(TimeCapReached, match="step 7"):
        create_time_cap(1e-9, str(marker))(None, {"step": 7, "epoch": 1})
    assert json.loads(marker.read_text()) == {"step": 7, "epoch": 1, "minutes": 1e-9}
    with pytest.raises(ValueError):
        create_time_cap(0, str(marker))


class CappedSteps(FakeSteps):
    """spaCy's baselines hit the time cap: the callback's marker, then a failed `spacy train`."""

    def train(self, config, output, overrides, *, gpu_id, code=None):
        super().train(config, output, overrides, gpu_id=gpu_id, code=code)
        cap = overrides.get("training.before_update")
        if cap:
            assert code is not None and Path(code).name == "time_cap.py"
            Path(cap["marker"]).write_text(json.dumps({"step": 41, "epoch": 3, "minutes": cap["minutes"]}))
            raise BenchmarkStepError("exit 1: TimeCapReached")
        return 1.5


def test_grid_evaluates_by_the_rule_and_caps_spacys_baselines(grid_env):
    grid_env["settings"].spacy_ner_time_cap = 30
    grid_env["settings"].student_epochs = 2
    steps = CappedSteps()
    metrics = grid_env["metrics"]
    result = _grid(grid_env, steps, sizes=[20], seeds=[0])
    assert not result.failed and len(result.written) == 6
    overrides = {call[1]: call[2] for call in steps.calls if call[0] == "train"}
    for system, data in overrides.items():
        cell = json.loads((metrics / "toy" / "n20-s0" / f"{system}.json").read_text())
        assert off_rule(cell) is None, system
        assert data["training.eval_frequency"] == cell["selection_rule"]["eval_frequency"] >= 1
    # the gold-only student trains on the labeled sample: the config's epochs, not those sized for all docs
    assert (
        overrides["student_full"]["training.max_epochs"] == 2 and "training.max_epochs" not in overrides["student_gold"]
    )
    vectors = json.loads((metrics / "toy" / "n20-s0" / "spacy_ner_vectors.json").read_text())
    assert vectors["model_selection"] == "best within a 30-min time cap (stopped at step 41)"
    assert "training.max_steps" not in overrides["spacy_ner_vectors"]  # spaCy's own schedule
    assert "training.before_update" not in overrides["teacher"]


def _result(dataset, size, seed, system, f1, date="", rule=ON_RULE):
    """A result file's fields as the report reads them (no ``selection_rule`` where rule is None)."""
    return {
        "dataset": dataset,
        "size": size,
        "seed": seed,
        "system": system,
        "n_labeled": 500,
        "n_test": 9,
        "test_sha256": "x",
        "scores": {"ents_f": f1, "ents_p": f1, "ents_r": f1, "ents_per_type": {}},
        "train_seconds": 1.0,
        "config": {"overrides": {}},
        "date": date,
        **({"selection_rule": rule} if rule else {}),
    }


def test_report_leaves_results_off_the_rule_out_of_targets():
    def cells(teacher_rule):
        return [
            _result("d", 500, seed, system, f, rule=rule)
            for seed in (0, 1)
            for system, f, rule in (("teacher", 0.50, teacher_rule), ("student_full", 0.51, ON_RULE))
        ]

    on = {t["id"]: t for t in accuracy_targets(cells(ON_RULE), "d", n_seeds_expected=2)}
    assert on["student_f1_vs_teacher"]["status"] == "met"
    late = {**ON_RULE, "eval_frequency": 35, "shortest_epoch_steps": 11}
    off = {t["id"]: t for t in accuracy_targets(cells(late), "d", n_seeds_expected=2)}["student_f1_vs_teacher"]
    assert off["status"] == "missing data"
    assert "teacher at 500 (seeds 0, 1; e.g. evaluated every 35 steps, its shortest epoch 11)" in off["detail"]
    agg = aggregate_dataset("d", cells(None), sizes=[500], seeds=[0, 1], systems=["teacher", "student_full"])
    assert any("teacher: seeds 0, 1 selected off the rule (selection not recorded)" in n for n in agg["notes"])
    assert {r["system"] for r in agg["results"]} == {"teacher", "student_full"}  # still in the tables


def test_distilled_results_older_than_their_cells_teacher_are_left_out_of_targets():
    new, old = "2026-12-03T00:00:00+00:00", "2026-12-01T00:00:00+00:00"
    cells = [_result("d", 500, seed, "teacher", 0.50, new) for seed in (0, 1)]
    cells += [_result("d", 500, 0, "student_full", 0.51, new), _result("d", 500, 1, "student_full", 0.40, old)]
    cells += [_result("d", 500, seed, "student_gold", 0.30, old) for seed in (0, 1)]  # no teacher in it: kept
    targets = {t["id"]: t for t in accuracy_targets(cells, "d", n_seeds_expected=1)}
    ratio = targets["student_f1_vs_teacher"]
    assert ratio["measured"]["n_seeds"] == 1 and ratio["measured"]["student_f1"] == pytest.approx(51.0)
    assert "left out, trained before their cell's teacher: student_full at 500 (seeds 1)" in ratio["detail"]
    gold = targets["student_beats_gold_only"]["measured"]["per_size"]
    assert [p["n_seeds"] for p in gold] == [1]  # the old gold-only student of seed 1 has no new full student
    agg = aggregate_dataset("d", cells, sizes=[500], seeds=[0, 1], systems=["teacher", "student_full"])
    assert any("student_full: seed 1 trained before the cell's teacher was re-run" in n for n in agg["notes"])
    assert not any("student_gold" in n for n in agg["notes"])


def test_wnut16_targets_cover_the_default_students_transfer_set_at_500_and_all():
    date = "2026-12-03T00:00:00+00:00"
    cells = []
    for size in (500, "all"):
        for seed in (0, 1):
            for system, f1 in (
                ("teacher", 0.50),
                ("student_full", 0.42),
                ("variant.tw_all", 0.48),
                ("student_gold", 0.40),
            ):
                cells.append(_result("wnut16", size, seed, system, f1, date))
    targets = {t["id"]: t for t in accuracy_targets(cells, "wnut16", n_seeds_expected=2)}
    assert targets["student_f1_vs_teacher"]["status"] == "not met"  # 84%
    assert targets["student_f1_vs_teacher_at_all"]["status"] == "not met"
    assert targets["tw_all_f1_vs_teacher"]["status"] == targets["tw_all_f1_vs_teacher_at_all"]["status"] == "met"
    assert "tweets" in targets["tw_all_f1_vs_teacher_at_all"]["description"]
    # +8 over gold only at all labeled, but no per-doc counts: no interval, so not yet met
    assert targets["tw_all_beats_gold_only_at_all"]["status"] == "missing data"
    assert targets["student_beats_gold_only_at_all"]["status"] == "not met"  # +2
    assert "no data at 100, 250, 500" in targets["tw_all_beats_spacy_ner_vectors"]["detail"]


def test_backfill_records_the_interval_from_the_config_version_used(tmp_path):
    repo = tmp_path / "repo"
    (repo / "configs").mkdir(parents=True)
    config = repo / "configs" / "s.cfg"
    config.write_text(TRAINING.format(epochs=2, steps=0, batcher=BY_SEQUENCE))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    used = hashlib.sha256(config.read_bytes()).hexdigest()
    config.write_text(config.read_text().replace("size = 4", "size = 8"))  # changed since the result
    corpus = repo / "training" / "d" / "n20-s0" / "corpus"
    corpus.mkdir(parents=True)
    _docs(corpus / "train.spacy", [5] * 40)
    metrics = repo / "metrics"
    for name, sha in (("student_gold", used), ("teacher", "0" * 64)):
        cell = {
            "config": {"file": "configs/s.cfg", "sha256": sha, "overrides": {}},
            "model": f"training/d/n20-s0/{name}/model-best",
            "train_data": "labeled",
        }
        (metrics / "d" / "n20-s0").mkdir(parents=True, exist_ok=True)
        (metrics / "d" / "n20-s0" / f"{name}.json").write_text(json.dumps(cell))
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        assert config_version(Path("configs/s.cfg"), used).count("size = 4") == 1
        added, skipped = backfill_selection(Path("metrics"), log=lambda _: None)
    finally:
        os.chdir(cwd)
    assert (added, skipped) == (1, 1)
    rule = json.loads((metrics / "d" / "n20-s0" / "student_gold.json").read_text())["selection_rule"]
    assert rule["shortest_epoch_steps"] == 10 and rule["eval_frequency"] == 200  # the config's own, off the rule


def test_an_augmented_variant_gets_its_own_transfer_set(grid_env, tmp_path):
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"aug2": {"note": "x", "overrides": {}, "augment_factor": 2}}))
    grid_env["settings"].student_variants = variants
    steps = FakeSteps()
    result = _grid(grid_env, steps, sizes=[20], seeds=[0], systems=["student_full", "variant.aug2"])
    assert not result.failed and len(result.written) == 2
    annotated = [call[2] for call in steps.calls if call[0] == "annotate"]
    assert len(annotated) == 2 and annotated[1][-1].endswith("corpus/augmented-x2.spacy")
    corpus = grid_env["work"] / "toy" / "n20-s0" / "corpus"
    copies = DocBin().from_disk(corpus / "augmented-x2.spacy")
    assert 0 < len(copies) <= 2 * 80 and (corpus / "distill-aug2.spacy").is_file()
    trained = {call[1]: call[2] for call in steps.calls if call[0] == "train"}
    assert trained["variant.aug2"]["paths.train"].endswith("distill-aug2.spacy")
    assert trained["student_full"]["paths.train"].endswith("corpus/distill.spacy")
    cell = json.loads((grid_env["metrics"] / "toy" / "n20-s0" / "variant.aug2.json").read_text())
    assert set(cell["upstream_seconds"]) == {"teacher_train", "annotate", "augment"}
    assert cell["selection_rule"]["first_epoch_steps"] > 0


def test_a_crossfit_variant_is_annotated_by_fold_teachers_evaluated_as_often(grid_env, tmp_path):
    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps({"cf3": {"overrides": {}, "crossfit_folds": 3}}))
    grid_env["settings"].student_variants = variants
    steps = FakeSteps()
    result = _grid(grid_env, steps, sizes=[20], seeds=[1], systems=["teacher", "variant.cf3"])
    assert not result.failed and len(result.written) == 2
    teacher_every = next(call[2] for call in steps.calls if call[:2] == ("train", "teacher"))["training.eval_frequency"]
    (_, labeled, unlabeled, folds, seed, overrides) = next(call for call in steps.calls if call[0] == "crossfit")
    assert labeled.endswith("corpus/train.spacy") and [Path(p).name for p in unlabeled] == ["unlabeled.spacy"]
    assert (folds, seed, overrides["system.seed"]) == (3, 1, 1)
    assert overrides["training.eval_frequency"] == max(1, teacher_every * 2 // 3)
    assert not [call for call in steps.calls if call[0] == "annotate"]  # the cell teacher annotates nothing here
    trained = {call[1]: call[2] for call in steps.calls if call[0] == "train"}
    assert trained["variant.cf3"]["paths.train"].endswith("corpus/distill-cf3.spacy")
    cell = json.loads((grid_env["metrics"] / "toy" / "n20-s1" / "variant.cf3.json").read_text())
    assert cell["upstream_seconds"] == {"teacher_train": 1.5, "crossfit": 30.0}


def test_an_unlabeled_text_variant_adds_new_lines_to_its_transfer_set(grid_env, tmp_path):
    known = " ".join(toy_sentences(80, seed=3)[5][0])  # a sentence of the toy corpus: dropped
    new = [f"extra tweet number {i} about Paris" for i in range(4)]
    text = tmp_path / "tweets.txt"
    text.write_text("\n".join([new[0], known, "too short", new[1], new[0], "", new[2], new[3]]) + "\n")
    variants = tmp_path / "variants.json"
    spec = {"overrides": {"training.max_epochs": 3}, "unlabeled_text": [str(text)]}
    variants.write_text(json.dumps({"tw": spec, "tw_again": spec, "tw2": {**spec, "max_unlabeled": 2}}))
    grid_env["settings"].student_variants = variants
    steps = FakeSteps()
    systems = ["student_full", "variant.tw", "variant.tw_again", "variant.tw2"]
    result = _grid(grid_env, steps, sizes=[20], seeds=[0], systems=systems)
    assert not result.failed and len(result.written) == 4
    annotated = [call[2] for call in steps.calls if call[0] == "annotate"]
    assert len(annotated) == 3  # the cell's own, tw (shared by tw_again) and tw2
    corpus = grid_env["work"] / "toy" / "n20-s0" / "corpus"
    extra = [Path(inputs[-1]) for inputs in annotated[1:]]
    assert all(p.parent == corpus and p.name.startswith("extra-") for p in extra) and extra[0] != extra[1]
    assert [Path(p).name for p in annotated[1][:2]] == ["train.spacy", "unlabeled.spacy"]
    texts = [doc.text for doc in DocBin().from_disk(extra[0]).get_docs(Vocab())]
    assert texts == new  # the corpus's sentence, the short line and the repeat are left out
    sample = [doc.text for doc in DocBin().from_disk(extra[1]).get_docs(Vocab())]
    assert len(sample) == 2 and set(sample) <= set(new)
    trained = {call[1]: call[2] for call in steps.calls if call[0] == "train"}
    # tw_again is the very same training as tw (settings and files): it takes tw's result, not trained again
    assert "variant.tw_again" not in trained
    again = json.loads((grid_env["metrics"] / "toy" / "n20-s0" / "variant.tw_again.json").read_text())
    assert again["same_training_as"] == "variant.tw"
    assert again["config"]["overrides"]["paths.train"] == trained["variant.tw"]["paths.train"]
    assert Path(trained["variant.tw"]["paths.train"]).name.startswith("distill-x")
    assert trained["variant.tw"]["training.max_epochs"] == 3
    distill = Path(trained["variant.tw"]["paths.train"])
    marker = json.loads(distill.with_name(distill.stem + "_done.json").read_text())
    assert marker["extra_unlabeled"]["docs"] == 4
    assert marker["extra_unlabeled"]["dropped_as_known"] == {str(text): 2}

    text.unlink()
    variants.write_text(json.dumps({"gone": spec}))
    result = _grid(grid_env, FakeSteps(), sizes=[20], seeds=[0], systems=["variant.gone"])
    assert result.failed and "benchmarks fetch tweets" in json.dumps(result.failed)
