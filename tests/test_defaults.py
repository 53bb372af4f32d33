"""One source for each default: the training sizes live in the configs; project.yml's vars, which the
workflow passes as overrides, must say the same, and the harness's settings carry no numbers of their own."""

import dataclasses

import pytest
import srsly
from spacy.util import load_config

from benchmarks.accuracy import TrainSettings, config_value
from tests.fixtures import ROOT

VARS_IN_CONFIGS = [
    ("teacher_epochs", "teacher.cfg", "training.max_epochs"),
    ("teacher_batch_size", "teacher.cfg", "training.batcher.size"),
    ("teacher_warmup_steps", "teacher.cfg", "training.optimizer.learn_rate.warmup_steps"),
    ("teacher_total_steps", "teacher.cfg", "training.optimizer.learn_rate.total_steps"),
    ("teacher_learn_rate", "teacher.cfg", "training.optimizer.learn_rate.initial_rate"),
    ("student_epochs", "student.cfg", "training.max_epochs"),
]


@pytest.mark.parametrize("var,config,key", VARS_IN_CONFIGS)
def test_project_vars_match_the_configs(var, config, key):
    project_vars = srsly.read_yaml(ROOT / "project.yml")["vars"]
    assert project_vars[var] == config_value(ROOT / "configs" / config, key)


def test_the_harness_keeps_the_configs_training_sizes():
    settings = TrainSettings(teacher_config=ROOT / "configs" / "teacher.cfg")
    sizes = [f.name for f in dataclasses.fields(TrainSettings) if f.name.endswith("_epochs")]
    sizes += ["teacher_batch_size", "teacher_warmup_steps", "teacher_total_steps", "teacher_learn_rate"]
    assert len(sizes) == 9 and all(getattr(settings, name) is None for name in sizes)
    teacher = settings.teacher_overrides()
    assert "training.max_epochs" not in teacher and "training.batcher.size" not in teacher
    total = load_config(ROOT / "configs" / "teacher.cfg")["training"]["optimizer"]["learn_rate"]["total_steps"]
    assert teacher["training.max_steps"] == total  # the cap follows the config's schedule
    assert "training.max_epochs" not in settings.student_overrides("student_full")
    assert TrainSettings(student_epochs=7).student_overrides("student_full")["training.max_epochs"] == 7
    # the gold-only student trains on the labeled sample alone: its own epochs, not the distilled students'
    assert "training.max_epochs" not in TrainSettings(student_epochs=7).student_overrides("student_gold")
    assert TrainSettings(student_gold_epochs=9).student_overrides("student_gold")["training.max_epochs"] == 9


def test_the_default_run_fetches_its_unlabeled_text_and_caps_the_students_updates():
    project = srsly.read_yaml(ROOT / "project.yml")
    commands = {c["name"]: c for c in project["commands"]}
    unlabeled = project["vars"]["unlabeled"]
    assert unlabeled and all(out.startswith(f"{unlabeled}/") for out in commands["assets"]["outputs"][-2:])
    assert "--with-tweets" in commands["assets"]["script"][0]
    # the step cap is the workflow's alone (the harness trains students by epochs): the config has none
    assert config_value(ROOT / "configs" / "student.cfg", "training.max_steps") == 0
    assert project["vars"]["student_max_steps"] > 0
    assert "--training.max_steps ${vars.student_max_steps}" in " ".join(commands["train-student"]["script"])
