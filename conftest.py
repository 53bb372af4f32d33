"""Shared fixtures of the package's tests (tests/) and the harness's (benchmarks/tests/)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# pytest-xdist workers share the cores: split the BLAS / torch threads between them (subprocesses inherit it).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, (os.cpu_count() or 1) // _WORKERS)))

from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train as spacy_train
from spacy.tokens import DocBin

from tests.fixtures import ROOT, TEACHER_OVERRIDES, make_tiny_bert, toy_docs, toy_words, write_tiny_glove


def pytest_collection_modifyitems(config, items) -> None:
    """Modules with slow tests first, so that under pytest-xdist (``--dist loadfile``, no reorder) the
    slowest files start at once on different workers; the order within each module is kept."""
    slow = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random uncased BERT saved to disk, as a teacher encoder."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert") / "bert", toy_words())


@pytest.fixture(scope="session")
def toy_vectors(tmp_path_factory) -> Path:
    """A tiny vectors pipeline folder covering every toy word (8 dims), as `paths.vectors`."""
    from spacy_compact_ner.tools.vectors import build_vectors

    root = tmp_path_factory.mktemp("toy_vectors")
    glove = write_tiny_glove(root / "glove", toy_words(), dims=8, seed=1)
    build_vectors(glove, root / "vectors", n_rows=1000)
    return root / "vectors"


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> dict:
    """train/dev .spacy files of the toy NER task."""
    root = tmp_path_factory.mktemp("toy_corpus")
    nlp = spacy.blank("en")
    paths = {}
    for name, n, seed in (("train", 40, 0), ("dev", 20, 1)):
        path = root / f"{name}.spacy"
        DocBin(docs=toy_docs(nlp.vocab, n, seed=seed)).to_disk(path)
        paths[name] = path
    return paths


@pytest.fixture(scope="session")
def trained_teacher(tiny_bert, toy_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    overrides = {
        "paths.train": str(toy_corpus["train"]),
        "paths.dev": str(toy_corpus["dev"]),
        "paths.teacher_encoder": str(tiny_bert),
        **TEACHER_OVERRIDES,
    }
    spacy_train(ROOT / "configs" / "teacher.cfg", out, overrides=overrides)
    return out / "model-best"
