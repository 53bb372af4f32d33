import json
import random
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_compact_ner.tools.cli import app
from spacy_compact_ner.tools.corpus import (
    CorpusFormatError,
    iob2_to_docs,
    prepare_corpus,
    read_brown,
    read_docbin,
    read_iob2,
    read_text_docs,
    sample_labeled,
    split_docs,
    write_docbin,
)

GOOD = "Empire\tB-facility\nState\tI-facility\nBuilding\tI-facility\n=\tO\nESB\tB-facility\n\nhi\tO\nPaul\tB-person\n"


def write(tmp_path: Path, text: str, name: str = "ner.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture
def nlp():
    return spacy.blank("en")


def make_iob2(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    names = ["Paris", "London", "Obama", "Apple", "Tokyo", "Messi"]
    lines = []
    for i in range(n):
        words = [f"w{i}_{j}" for j in range(rng.randint(3, 12))]
        tags = ["O"] * len(words)
        k = rng.randrange(len(words))
        words[k] = rng.choice(names)
        tags[k] = "B-" + rng.choice(["geo-loc", "person", "company"])
        if k + 1 < len(words) and rng.random() < 0.5:
            tags[k + 1] = "I-" + tags[k][2:]
        lines += [f"{w}\t{t}" for w, t in zip(words, tags)] + [""]
    return "\n".join(lines) + "\n"


# --- read_iob2 ----------------------------------------------------------------------------------


def test_read_iob2_valid(tmp_path):
    sents = read_iob2(write(tmp_path, GOOD))
    assert sents == [
        (["Empire", "State", "Building", "=", "ESB"], ["B-facility", "I-facility", "I-facility", "O", "B-facility"]),
        (["hi", "Paul"], ["O", "B-person"]),
    ]


def test_read_iob2_tolerates_crlf_trailing_whitespace_tab_separators_and_no_final_blank(tmp_path):
    text = "a\tO  \r\nParis\tB-geo-loc\t\r\n\t\r\n   \r\n\r\nb\tO\r\nc\tB-person"
    sents = read_iob2(write(tmp_path, text))
    assert sents == [(["a", "Paris"], ["O", "B-geo-loc"]), (["b", "c"], ["O", "B-person"])]


def test_read_iob2_utf8_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffCafé\tB-facility\n".encode("utf-8"))
    assert read_iob2(path) == [(["Café"], ["B-facility"])]


@pytest.mark.parametrize(
    "text,line,fragment",
    [
        ("a\tO\nb O\n", 2, "expected 2 tab-separated columns"),
        ("a\tO\nb\tO\textra\n", 2, "found 3"),
        ("a\tO\n\nb\tX-person\n", 3, "invalid IOB2 tag 'X-person'"),
        ("a\tO\nb\tB-\n", 2, "invalid IOB2 tag"),
        ("a\tO\nb\tI-person\n", 2, "I- tag with no entity"),
        ("a\tB-person\nb\tI-geo-loc\n", 2, "I- tag with no entity"),
        ("a\tB-person\n\nb\tI-person\n", 3, "I- tag with no entity"),
        ("a\tO\n\tO\n", 2, "empty token"),
    ],
)
def test_read_iob2_errors_name_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(CorpusFormatError) as err:
        read_iob2(path)
    assert f"{path}:{line}:" in str(err.value)
    assert fragment in str(err.value)


def test_read_iob2_unknown_label(tmp_path):
    path = write(tmp_path, "a\tB-person\n\nb\tB-movie\n")
    assert len(read_iob2(path, labels={"person", "movie"})) == 2
    with pytest.raises(CorpusFormatError, match=r":3: unknown label 'movie'") as err:
        read_iob2(path, labels={"person"})
    assert str(path) in str(err.value)


def test_read_iob2_undecodable_bytes(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"a\tO\nb\xff\tO\n")
    with pytest.raises(CorpusFormatError) as err:
        read_iob2(path)
    msg = str(err.value)
    assert str(path) in msg and "byte offset 5" in msg and "line 2" in msg


@pytest.mark.parametrize("text", ["", "\n\n", "  \t\n\r\n"])
def test_read_iob2_empty_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(CorpusFormatError, match="empty file") as err:
        read_iob2(path)
    assert str(path) in str(err.value)


def test_corpus_format_error_is_value_error():
    assert issubclass(CorpusFormatError, ValueError)


# --- iob2_to_docs -------------------------------------------------------------------------------


def test_iob2_to_docs(tmp_path, nlp):
    docs = iob2_to_docs(write(tmp_path, GOOD), nlp.vocab)
    assert [d.text for d in docs] == ["Empire State Building = ESB", "hi Paul"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Empire State Building", "facility"), ("ESB", "facility")]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("Paul", "person")]
    for doc in docs:
        assert all(t.ent_iob != 0 for t in doc), "non-entity tokens must be O, not missing"
        assert doc[-1].whitespace_ == ""
        assert all(t.whitespace_ == " " for t in doc[:-1])
    assert [t.ent_iob_ for t in docs[0]] == ["B", "I", "I", "O", "B"]


def test_iob2_to_docs_adjacent_entities_of_same_type(tmp_path, nlp):
    docs = iob2_to_docs(write(tmp_path, "A\tB-person\nB\tB-person\nC\tI-person\n"), nlp.vocab)
    assert [e.text for e in docs[0].ents] == ["A", "B C"]


# --- split_docs / sample_labeled ----------------------------------------------------------------


@pytest.fixture
def docs(tmp_path, nlp):
    return iob2_to_docs(write(tmp_path, make_iob2(60)), nlp.vocab)


def texts(docs):
    return [d.text for d in docs]


def test_split_sizes_disjoint_and_deterministic(docs):
    train, dev, test = split_docs(docs, n_dev=10, n_test=15, seed=3)
    assert (len(train), len(dev), len(test)) == (35, 10, 15)
    assert sorted(texts(train) + texts(dev) + texts(test)) == sorted(texts(docs))
    again = split_docs(docs, n_dev=10, n_test=15, seed=3)
    assert [texts(s) for s in again] == [texts(train), texts(dev), texts(test)]
    other = split_docs(docs, n_dev=10, n_test=15, seed=4)
    assert texts(other[2]) != texts(test)
    # each split keeps the original order
    position = {d.text: i for i, d in enumerate(docs)}
    for split in (train, dev, test):
        assert [position[t] for t in texts(split)] == sorted(position[t] for t in texts(split))


def test_split_test_set_does_not_depend_on_dev_size(docs):
    _, _, test_a = split_docs(docs, n_dev=5, n_test=15, seed=0)
    _, _, test_b = split_docs(docs, n_dev=20, n_test=15, seed=0)
    assert texts(test_a) == texts(test_b)


@pytest.mark.parametrize("n_dev,n_test", [(30, 30), (59, 1), (100, 0)])
def test_split_too_large(docs, n_dev, n_test):
    with pytest.raises(ValueError, match="cannot split 60 docs"):
        split_docs(docs, n_dev=n_dev, n_test=n_test, seed=0)


def test_split_negative(docs):
    with pytest.raises(ValueError, match=">= 0"):
        split_docs(docs, n_dev=-1, n_test=5, seed=0)


def test_sample_nested_and_deterministic(docs):
    small, rest_small = sample_labeled(docs, n_labeled=10, seed=7)
    large, rest_large = sample_labeled(docs, n_labeled=25, seed=7)
    assert len(small) == 10 and len(rest_small) == 50
    assert len(large) == 25 and len(rest_large) == 35
    assert set(texts(small)) <= set(texts(large))
    assert texts(sample_labeled(docs, n_labeled=10, seed=7)[0]) == texts(small)
    assert texts(sample_labeled(docs, n_labeled=10, seed=8)[0]) != texts(small)
    assert sorted(texts(large) + texts(rest_large)) == sorted(texts(docs))


@pytest.mark.parametrize("n", [0, -1, 60, 1000])
def test_sample_all(docs, n):
    labeled, unlabeled = sample_labeled(docs, n_labeled=n, seed=0)
    assert texts(labeled) == texts(docs) and unlabeled == []


def test_unlabeled_docs_have_no_annotation_and_survive_docbin(docs, tmp_path, nlp):
    labeled, unlabeled = sample_labeled(docs, n_labeled=20, seed=0)
    assert all(len(d.ents) > 0 for d in labeled)
    assert unlabeled and all(all(t.ent_iob == 0 for t in d) for d in unlabeled)
    assert not any(d.has_annotation("ENT_IOB") for d in unlabeled)
    # the source docs keep their annotation
    assert all(all(t.ent_iob != 0 for t in d) for d in docs)
    path = tmp_path / "out" / "unlabeled.spacy"
    assert write_docbin(unlabeled, path) == 40
    assert not path.with_suffix(".tmp").exists()
    loaded = read_docbin(path, nlp.vocab)
    assert texts(loaded) == texts(unlabeled)
    assert all(all(t.ent_iob == 0 for t in d) for d in loaded)
    assert [[t.whitespace_ for t in d] for d in loaded] == [[t.whitespace_ for t in d] for d in unlabeled]


def test_labeled_docs_survive_docbin(docs, tmp_path, nlp):
    path = tmp_path / "train.spacy"
    write_docbin(docs, path)
    loaded = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded] == [
        [(e.start, e.end, e.label_) for e in d.ents] for d in docs
    ]
    assert all(all(t.ent_iob != 0 for t in d) for d in loaded)


# --- unlabeled text -----------------------------------------------------------------------------


def test_read_text_docs_units(tmp_path, nlp):
    path = write(tmp_path, "First line  here.\nSecond   line.\n\n\n Para two, line one.\r\nline two. Done!\n", "t.txt")
    lines = [d.text for d in read_text_docs(path, nlp, unit="line")]
    assert lines == ["First line here.", "Second line.", "Para two, line one.", "line two. Done!"]
    paras = [d.text for d in read_text_docs(path, nlp, unit="paragraph")]
    assert paras == ["First line here. Second line.", "Para two, line one. line two. Done!"]
    sents = [d.text for d in read_text_docs(path, nlp, unit="sentence")]
    assert sents == ["First line here.", "Second line.", "Para two, line one.", "line two.", "Done!"]
    assert [d.text for d in read_text_docs(path, nlp, unit="line", min_chars=14)] == [
        "First line here.",
        "Para two, line one.",
        "line two. Done!",
    ]
    assert all(not d.has_annotation("ENT_IOB") for d in read_text_docs(path, nlp))
    with pytest.raises(ValueError, match="unit must be"):
        list(read_text_docs(path, nlp, unit="word"))


def test_read_text_docs_bad_bytes(tmp_path, nlp):
    path = tmp_path / "t.txt"
    path.write_bytes(b"ok\n\xc3(\n")
    with pytest.raises(CorpusFormatError, match="byte offset 3"):
        list(read_text_docs(path, nlp))


def test_read_brown(tmp_path, nlp):
    path = write(
        tmp_path,
        "\n\n\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at ''/'' ./.\n\n\n\tA/at 1/2/cd inch/nn ./.\n",
        "ca01",
    )
    write(tmp_path, "not brown", "README")
    out = [d.text for d in read_brown(tmp_path, nlp)]
    assert out == ['The Fulton jury said " no " .', "A 1/2 inch ."]
    assert [d.text for d in read_brown(path, nlp)] == out
    write(tmp_path, "\tThe/at bad\n", "ca02")
    with pytest.raises(CorpusFormatError, match=r"ca02:1: expected word/TAG"):
        list(read_brown(tmp_path, nlp))


# --- prepare_corpus and CLI ---------------------------------------------------------------------


def check_corpus(out: Path, stats: dict, nlp) -> None:
    assert json.loads((out / "corpus_stats.json").read_text()) == stats
    loaded = {name: read_docbin(out / f"{name}.spacy", nlp.vocab) for name in ("train", "dev", "test", "unlabeled")}
    for name, docs in loaded.items():
        assert len(docs) == stats["splits"][name]["docs"]
        assert sum(len(d) for d in docs) == stats["splits"][name]["tokens"]
    assert all(all(t.ent_iob != 0 for t in d) for n in ("train", "dev", "test") for d in loaded[n])
    assert all(all(t.ent_iob == 0 for t in d) for d in loaded["unlabeled"])
    assert not list(out.glob("*.tmp"))


def test_prepare_corpus_end_to_end(tmp_path, nlp):
    iob2 = write(tmp_path, make_iob2(60))
    text = write(tmp_path, "One sentence here. Another one follows!\n\nA third sentence, long enough.\n", "extra.txt")
    out = tmp_path / "corpus"
    stats = prepare_corpus(iob2, out, n_labeled=20, n_dev=10, n_test=15, seed=1, unlabeled_text=[text])
    s = stats["splits"]
    assert (s["train"]["docs"], s["dev"]["docs"], s["test"]["docs"]) == (20, 10, 15)
    assert s["unlabeled"]["in_domain_docs"] == 15
    assert s["unlabeled"]["extra_docs"] == 3
    assert s["unlabeled"]["extra_docs_by_source"] == {str(text): 3}
    assert s["unlabeled"]["docs"] == 18 and s["unlabeled"]["entities"] == 0
    assert s["all"]["docs"] == 60
    assert s["train"]["entities"] == sum(s["train"]["entities_by_label"].values()) >= 20
    assert stats["labels"] == ["company", "geo-loc", "person"]
    assert (stats["seed"], stats["split_seed"], stats["n_labeled"]) == (1, 0, 20)
    check_corpus(out, stats, nlp)

    # deterministic, and the cap samples the extra text
    again = prepare_corpus(iob2, tmp_path / "again", n_labeled=20, n_dev=10, n_test=15, seed=1, unlabeled_text=[text])
    assert again == stats
    for name in ("train", "dev", "test", "unlabeled"):
        assert (out / f"{name}.spacy").read_bytes() == (tmp_path / "again" / f"{name}.spacy").read_bytes()
    capped = prepare_corpus(
        iob2, tmp_path / "capped", n_labeled=20, n_dev=10, n_test=15, seed=1, unlabeled_text=[tmp_path], max_unlabeled=2
    )
    assert capped["splits"]["unlabeled"]["extra_docs"] == 2
    assert capped["splits"]["unlabeled"]["in_domain_docs"] == 15
    # another sample seed keeps dev and test
    other = prepare_corpus(iob2, tmp_path / "other", n_labeled=20, n_dev=10, n_test=15, seed=2)
    assert other["splits"]["train"]["docs"] == 20
    for name in ("dev", "test"):
        assert (tmp_path / "other" / f"{name}.spacy").read_bytes() == (out / f"{name}.spacy").read_bytes()
    assert texts(read_docbin(tmp_path / "other" / "train.spacy", nlp.vocab)) != texts(
        read_docbin(out / "train.spacy", nlp.vocab)
    )


def test_prepare_corpus_missing_text(tmp_path):
    iob2 = write(tmp_path, make_iob2(60))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        prepare_corpus(iob2, tmp_path / "c", n_labeled=5, n_dev=5, n_test=5, unlabeled_text=[tmp_path / "nope.txt"])
    assert not (tmp_path / "c").exists()


def test_cli_corpus(tmp_path, nlp):
    iob2 = write(tmp_path, make_iob2(60))
    text = write(tmp_path, "Some unlabeled text here.\nAnd more of it here.\n", "extra.txt")
    out = tmp_path / "corpus"
    result = CliRunner().invoke(
        app,
        [
            "corpus",
            str(iob2),
            str(out),
            "--n-labeled",
            "25",
            "--n-dev",
            "10",
            "--n-test",
            "15",
            "--seed",
            "3",
            "--unlabeled-text",
            str(text),
            "--unlabeled-text",
            str(text),
            "--text-unit",
            "line",
            "--max-unlabeled",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "unlabeled" in result.output
    stats = json.loads((out / "corpus_stats.json").read_text())
    assert stats["splits"]["train"]["docs"] == 25
    assert stats["splits"]["unlabeled"]["extra_docs"] == 3
    assert stats["splits"]["unlabeled"]["in_domain_docs"] == 10
    check_corpus(out, stats, nlp)


def test_cli_corpus_reports_format_error(tmp_path):
    iob2 = write(tmp_path, "a\tO\nb\tI-person\n")
    result = CliRunner().invoke(app, ["corpus", str(iob2), str(tmp_path / "out"), "--scheme", "iob2"])
    assert result.exit_code == 1
    assert f"{iob2}:2:" in result.output and "I- tag with no entity" in result.output
    assert not (tmp_path / "out").exists()  # nothing written from bad input
