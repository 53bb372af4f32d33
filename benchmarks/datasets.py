"""Datasets of the accuracy benchmark.

A dataset is gold NER data (IOB2 ``token<TAB>tag``, or any labeled format of
`spacy_compact_ner.tools.formats`), split deterministically into train/dev/test by
`spacy_compact_ner.tools.corpus.prepare_corpus` unless it has its own dev and test files (CoNLL-2003:
dev is a fixed sample of its valid split, test the whole official test split); each cell of the grid draws its
labeled sample (size, seed)
from train and keeps the rest of train as unlabeled text. WNUT-16 is the first dataset; a second one
(e.g. a silver State-of-the-Union set labeled by en_core_web_md, written as IOB2) plugs in by name:

    python -m benchmarks accuracy silver_sotu.iob2 --dataset sotu_silver --n-test 1000

Every cell of one dataset is scored on the same test split (the split seed is fixed per dataset), and
the cell JSONs record the test file's sha256 so the report can check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .common import Size

RESERVED_NAMES = {"speed"}


@dataclass(frozen=True)
class BenchmarkDataset:
    """One gold dataset of the benchmark.

    name (str): Folder name under ``metrics/benchmark/`` and ``training/benchmark/``.
    iob2 (Path): The gold training file (IOB2 for the split datasets).
    n_dev (int): Dev sentences (model selection); with a ``dev`` file, a fixed sample of it (<= 0: all).
    n_test (int): Test sentences split off ``iob2`` (the reported scores); unused with a ``test`` file.
    dev, test (Path | None): The dataset's own dev and test files.
    split_seed (int): Seed of the dev/test split (fixed, so every cell shares the test set).
    unlabeled_text (Sequence[Path]): Extra unlabeled text added to every cell's unlabeled docs.
    text_unit (str): How extra text files are cut into docs (see `prepare_corpus`).
    max_unlabeled (int | None): Cap on extra unlabeled docs.
    """

    name: str
    iob2: Path
    n_dev: int = 300
    n_test: int = 500
    split_seed: int = 0
    unlabeled_text: Sequence[Path] = field(default_factory=tuple)
    text_unit: str = "sentence"
    max_unlabeled: int | None = None
    dev: Path | None = None
    test: Path | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "_").isidentifier() or self.name in RESERVED_NAMES:
            raise ValueError(
                f"dataset name must be a simple identifier (letters, digits, _ or -), not {sorted(RESERVED_NAMES)}: "
                f"got {self.name!r}"
            )

    def prepare(self, output_dir: Path, *, size: Size, seed: int) -> dict:
        """Write train/dev/test/unlabeled.spacy of one cell and return its corpus statistics."""
        from spacy_compact_ner.tools.corpus import prepare_corpus

        for path in (self.iob2, self.dev, self.test):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"dataset {self.name}: gold file not found: {path}")
        return prepare_corpus(
            self.iob2,
            output_dir,
            n_labeled=0 if size == "all" else int(size),
            n_dev=self.n_dev,
            n_test=self.n_test,
            dev_path=self.dev,
            test_path=self.test,
            dev_sample=self.n_dev if self.dev is not None and self.n_dev > 0 else None,
            seed=seed,
            split_seed=self.split_seed,
            unlabeled_text=tuple(self.unlabeled_text),
            text_unit=self.text_unit,  # type: ignore[arg-type]
            max_unlabeled=self.max_unlabeled,
        )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "iob2": str(self.iob2),
            "n_dev": self.n_dev,
            "n_test": self.n_test,
            "split_seed": self.split_seed,
            "unlabeled_text": [str(p) for p in self.unlabeled_text],
            **{name: str(path) for name, path in (("dev", self.dev), ("test", self.test)) if path is not None},
        }
