"""The silver dataset (benchmarks/silver.py) and how the report labels it."""

import json

import pytest
import spacy
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.doc_scores import encode_counts
from benchmarks.report import accuracy_markdown, accuracy_targets, aggregate_dataset, dataset_title
from benchmarks.silver import build_silver, meta_path, tag_sentences
from benchmarks.tests.util import ON_RULE
from spacy_compact_ner.tools.corpus import read_iob2
from tests.fixtures import nested_counts, toy_sentences, write_toy_tagger


@pytest.fixture(scope="module")
def toy_tagger(tmp_path_factory):
    return write_toy_tagger(tmp_path_factory.mktemp("tagger") / "toy_tagger")


@pytest.fixture
def texts(tmp_path):
    """Two text files of paragraphs, a few sentences each, plus a 2-token sentence to be filtered."""
    folder = tmp_path / "texts"
    folder.mkdir()
    sentences = [" ".join(words) + " ." for words, _ in toy_sentences(60, seed=4)]
    (folder / "a.txt").write_text("\n\n".join(" ".join(sentences[i : i + 3]) for i in range(0, 30, 3)) + "\n\nHi.\n")
    (folder / "b.txt").write_text(" ".join(sentences[30:]) + "\n")
    return folder


def test_build_silver_writes_iob2_and_meta(texts, toy_tagger, tmp_path):
    out = tmp_path / "silver" / "ner.txt"
    meta = build_silver(texts, toy_tagger, out, n_sentences=40, seed=1, log=lambda _: None)
    sentences = read_iob2(out)  # valid IOB2
    assert len(sentences) == 40 == meta["sentences"]
    assert meta["source_sentences"] == 61 and meta["usable_sentences"] == 60  # "Hi." is 2 tokens: skipped
    labels = {tag[2:] for _, tags in sentences for tag in tags if tag != "O"}
    assert labels == {"PER", "LOC", "ORG"} and set(meta["entities"]) == labels
    assert sum(meta["entities"].values()) == sum(t.startswith("B-") for _, tags in sentences for t in tags)
    assert "not gold" in meta["silver"] and meta["tagger"]["components"] == ["ner"]
    assert json.loads(meta_path(out).read_text())["sentences"] == 40
    # the ruler's tags survive the round trip: every Corp follows an ORG name
    for words, tags in sentences:
        for word, tag in zip(words, tags):
            if word == "Corp":
                assert tag == "I-ORG"
    again = build_silver(texts, toy_tagger, tmp_path / "again.txt", n_sentences=40, seed=1, log=lambda _: None)
    assert (tmp_path / "again.txt").read_text() == out.read_text() and again["entities"] == meta["entities"]
    build_silver(texts, toy_tagger, tmp_path / "other.txt", n_sentences=40, seed=2, log=lambda _: None)
    assert (tmp_path / "other.txt").read_text() != out.read_text()


def test_build_silver_errors(texts, toy_tagger, tmp_path):
    with pytest.raises(ValueError, match="only 60 sentences"):
        build_silver(texts, toy_tagger, tmp_path / "x.txt", n_sentences=100, log=lambda _: None)
    blank = tmp_path / "blank"
    spacy.blank("en").to_disk(blank)
    with pytest.raises(ValueError, match="no 'ner'"):
        build_silver(texts, blank, tmp_path / "x.txt", n_sentences=5, log=lambda _: None)
    with pytest.raises(ValueError, match="min_tokens"):
        build_silver(texts, toy_tagger, tmp_path / "x.txt", n_sentences=5, min_tokens=9, max_tokens=3)
    assert not (tmp_path / "x.txt").exists()
    result = CliRunner().invoke(app, ["silver", str(texts), str(tmp_path / "nope"), str(tmp_path / "x.txt")])
    assert result.exit_code == 1 and "not a spaCy pipeline" in result.output


def test_tag_sentences_drops_spaces_and_keeps_entities_whole(toy_tagger):
    nlp = spacy.load(toy_tagger)
    [(words, tags)] = list(tag_sentences(nlp, ["Alice  visited Acme Corp ."]))
    assert words == ["Alice", "visited", "Acme", "Corp", "."]
    assert tags == ["B-PER", "O", "B-ORG", "I-ORG", "O"]


def test_cli_and_report_call_silver_scores_silver(texts, toy_tagger, tmp_path):
    out = tmp_path / "s.txt"
    result = CliRunner().invoke(app, ["silver", str(texts), str(toy_tagger), str(out), "--sentences", "20"])
    assert result.exit_code == 0, result.output
    assert "silver labels: " in result.output and len(read_iob2(out)) == 20
    assert "silver" in dataset_title("sotu_silver") and dataset_title("wnut16") == "wnut16"
    cells = [
        {
            "dataset": "sotu_silver",
            "size": 500,
            "seed": 0,
            "system": s,
            "scores": {"ents_f": f},
            "test_doc_counts": encode_counts(nested_counts(f, 2000)),
            "selection_rule": ON_RULE,
        }
        for s, f in (("teacher", 0.80), ("student_full", 0.77), ("student_gold", 0.70), ("spacy_ner", 0.72))
    ]
    targets = {t["id"]: t for t in accuracy_targets(cells, "sotu_silver", n_seeds_expected=1, sizes=[500, 2000])}
    assert targets["student_f1_vs_teacher"]["status"] == "met"  # 96%
    gold = targets["student_beats_gold_only"]
    assert gold["status"] == "met" and "at 500 labeled" in gold["description"]  # only the sizes the grid has
    assert targets["student_beats_spacy_ner"]["status"] == "met"  # 77 vs 72
    assert "student_beats_spacy_ner_vectors" not in targets and "teacher_beats_spacy_ner_vectors" not in targets


def test_silver_tables_mark_the_row_with_the_taggers_vectors():
    def cell(dataset, system, f):
        return {
            "dataset": dataset,
            "size": 500,
            "seed": 0,
            "system": system,
            "n_labeled": 500,
            "n_test": 2000,
            "test_sha256": "x",
            "train_seconds": 1.0,
            "config": {"sha256": "c", "overrides": {}},
            "scores": {"ents_f": f, "ents_p": f, "ents_r": f, "ents_per_type": {"ORG": {"p": f, "r": f, "f": f}}},
        }

    for dataset, marked in (("sotu_silver", True), ("wnut16", False)):
        cells = [cell(dataset, "student_full", 0.7), cell(dataset, "spacy_ner_vectors", 0.8)]
        agg = aggregate_dataset(dataset, cells, sizes=[500], seeds=[0], systems=["student_full", "spacy_ner_vectors"])
        md = "\n".join(accuracy_markdown(agg, plot=None))
        assert ("(accuracy config) †" in md) is marked and ("† uses en_core_web_md's vectors" in md) is marked
        assert "| 500 | 70.0 | 80.0 |" in md.replace(" (n=1)", "")
        per_type = md.split("Per-type F1")[1].splitlines()[2]  # the per-type table's header carries the mark too
        assert ("(accuracy config) †" in per_type) is marked, per_type
