"""Fixtures shared by the harness's tests."""

import pytest

from benchmarks.accuracy import TrainSettings
from benchmarks.datasets import BenchmarkDataset
from tests.fixtures import ROOT, write_toy_iob2


@pytest.fixture
def grid_env(tmp_path):
    """A toy dataset and the grid's settings, metrics and work folders under ``tmp_path``."""
    iob2 = write_toy_iob2(tmp_path / "toy.iob2", 80)
    dataset = BenchmarkDataset("toy", iob2, n_dev=10, n_test=10)
    (tmp_path / "md" / "vocab").mkdir(parents=True)
    settings = TrainSettings(
        teacher_encoder=tmp_path,
        teacher_config=ROOT / "configs" / "teacher.cfg",
        student_config=ROOT / "configs" / "student.cfg",
        baseline_vectors=tmp_path / "md",
    )
    return {"dataset": dataset, "settings": settings, "metrics": tmp_path / "metrics", "work": tmp_path / "work"}
