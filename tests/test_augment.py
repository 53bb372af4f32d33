"""Augmented copies of the training docs (tools/augment.py): each operation, determinism, the CLI."""

import random

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_compact_ner.tools.augment import (
    Neighbours,
    augment_docs,
    mention_pool,
    replace_mentions,
    segments,
    shuffle_segments,
)
from spacy_compact_ner.tools.cli import app
from tests.fixtures import toy_docs


def _doc(vocab, words, ents):
    doc = Doc(vocab, words=words)
    doc.set_ents([Span(doc, s, e, label=label) for s, e, label in ents], default="outside")
    return doc


def test_segments_cover_the_doc_and_keep_mentions_whole():
    vocab = spacy.blank("en").vocab
    doc = _doc(vocab, ["yesterday", "Ann", "Lee", "saw", "Paris", "."], [(1, 3, "PER"), (4, 5, "LOC")])
    assert segments(doc) == [(0, 1, None), (1, 3, "PER"), (3, 4, None), (4, 5, "LOC"), (5, 6, None)]
    rng = random.Random(0)
    for _ in range(20):
        words, _ = shuffle_segments(doc, rng, 1.0)
        assert words[0] == "yesterday" and sorted(words[1:3]) == ["Ann", "Lee"] and words[3:] == ["saw", "Paris", "."]


def test_mention_replacement_uses_mentions_of_the_same_type():
    vocab = spacy.blank("en").vocab
    docs = [
        _doc(vocab, ["Ann", "saw", "Rome"], [(0, 1, "PER"), (2, 3, "LOC")]),
        _doc(vocab, ["Bob", "Smith", "left", "Oslo"], [(0, 2, "PER"), (3, 4, "LOC")]),
    ]
    pool = mention_pool(docs)
    assert pool == {"LOC": [("Oslo",), ("Rome",)], "PER": [("Ann",), ("Bob", "Smith")]}
    words, spaces = replace_mentions(docs[0], pool, random.Random(1), 1.0)
    assert words[-2] == "saw" and len(words) == len(spaces)
    assert tuple(words[:-2]) in pool["PER"] and words[-1] in {"Oslo", "Rome"}


def test_augment_docs_is_deterministic_and_drops_unchanged_copies(toy_vectors):
    nlp = spacy.load(toy_vectors)
    labeled = toy_docs(nlp.vocab, 30, seed=0)
    unlabeled = toy_docs(nlp.vocab, 10, seed=1, annotated=False)
    neighbours = Neighbours(nlp.vocab, k=3)
    assert neighbours("Paris") and all(w[0].isupper() for w in neighbours("Paris"))

    def run(seed):
        return [
            [t.text for t in d]
            for d in augment_docs(labeled, unlabeled, nlp.vocab, factor=3, seed=seed, neighbours=neighbours)
        ]

    first = run(0)
    assert first == run(0) and first != run(1)
    assert 0 < len(first) <= 3 * 40
    for doc in labeled[:10]:  # a copy equal to its source is dropped
        copies = augment_docs([doc], [], nlp.vocab, factor=3, seed=0, neighbours=neighbours)
        assert all([t.text for t in c] != [t.text for t in doc] for c in copies)
    copies = list(augment_docs(labeled, [], nlp.vocab, factor=2, seed=0, operations=["mention"]))
    assert copies and all(not d.has_annotation("ENT_IOB") for d in copies)  # the teacher labels them
    with pytest.raises(ValueError, match="unknown augmentation"):
        list(augment_docs(labeled, [], nlp.vocab, factor=1, operations=["typo"]))
    with pytest.raises(ValueError, match="needs a vectors table"):
        list(augment_docs(labeled, unlabeled, nlp.vocab, factor=1))


def test_augment_cli(toy_vectors, tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=toy_docs(nlp.vocab, 20, seed=0)).to_disk(tmp_path / "train.spacy")
    DocBin(docs=toy_docs(nlp.vocab, 5, seed=2, annotated=False)).to_disk(tmp_path / "unlabeled.spacy")
    args = [str(tmp_path / "train.spacy"), str(tmp_path / "unlabeled.spacy"), str(tmp_path / "aug.spacy")]
    off = CliRunner().invoke(app, ["augment", *args])
    assert off.exit_code == 0, off.output
    assert len(DocBin().from_disk(tmp_path / "aug.spacy")) == 0  # factor 0: an empty file for annotate
    result = CliRunner().invoke(app, ["augment", *args, "--factor", "2", "--vectors", str(toy_vectors)])
    assert result.exit_code == 0, result.output
    written = len(DocBin().from_disk(tmp_path / "aug.spacy"))
    assert 0 < written <= 50 and f"{written} copies of 25 docs" in result.output
    bad = CliRunner().invoke(app, ["augment", *args, "--factor", "2"])
    assert bad.exit_code == 1 and "needs --vectors" in bad.output
