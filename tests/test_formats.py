"""Readers of a user's data (spacy_compact_ner/tools/formats.py) and `prepare_corpus` on them."""

import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_compact_ner.tools.cli import app
from spacy_compact_ner.tools.corpus import prepare_corpus, read_docbin
from spacy_compact_ner.tools.formats import (
    CorpusFormatError,
    detect_format,
    read_columns,
    read_labeled,
    unlabeled_texts,
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def write(path, text):
    path.write_text(text, encoding="utf8")
    return path


def write_jsonl(path, records):
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


CONLL03 = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP I-LOC
Paris NNP I-NP B-LOC
"""


def test_conll03_columns_iob1_and_docstart(tmp_path, nlp):
    path = write(tmp_path / "train.txt", CONLL03)
    sentences, scheme = read_columns(path)
    assert scheme == "iob1" and len(sentences) == 3  # -DOCSTART- lines are no sentences
    docs, stats = read_labeled(path, nlp)
    assert stats.format == "conll" and stats.scheme == "iob1"
    assert ents(docs[0]) == [("EU", "ORG"), ("German", "MISC")]
    assert ents(docs[1]) == [("Peter Blackburn", "PER")]
    assert ents(docs[2]) == [("BRUSSELS", "LOC"), ("Paris", "LOC")]  # IOB1's B- splits adjacent entities


@pytest.mark.parametrize(
    "tags,expected",
    [
        (["B-drug_name", "L-drug_name", "O", "U-dose"], [("a b", "drug_name"), ("d", "dose")]),
        (["B-X", "I-X", "E-X", "S-Y"], [("a b c", "X"), ("d", "Y")]),  # BIOES is BILUO by other letters
    ],
)
def test_biluo_columns(tmp_path, nlp, tags, expected):
    path = write(tmp_path / "t.biluo", "".join(f"{w}\t{t}\n" for w, t in zip("abcd", tags)))
    docs, stats = read_labeled(path, nlp)
    assert stats.scheme == "biluo" and ents(docs[0]) == expected


@pytest.mark.parametrize(
    "text,scheme,line,fragment",
    [
        ("a\tB-X\nb\tO\n", "biluo", 2, "ends with an L- tag"),
        ("a\tO\nb\tL-X\n", "biluo", 2, "continues a B-X"),
        ("a\tB-X\nb\tI-X\n", "biluo", 2, "sentence ends inside an entity"),
        ("a\tO\nb\tI-X\n", "iob2", 2, "I- tag with no entity"),
        ("a\tO\nb\tU-X\n", "iob2", 2, "invalid IOB2 tag"),
        ("a\tO\nb\n", "auto", 2, "expected a token and a tag"),
        ("a\tO\nb\tX\n", "auto", 2, "invalid entity tag 'X'"),
    ],
)
def test_column_errors_name_file_and_line(tmp_path, text, scheme, line, fragment):
    path = write(tmp_path / "bad.conll", text)
    with pytest.raises(CorpusFormatError) as err:
        read_columns(path, scheme=scheme)
    assert f"{path}:{line}:" in str(err.value) and fragment in str(err.value)


def test_jsonl_spans_entities_and_tokens(tmp_path, nlp):
    text = "Alice visited New York ."
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"text": text, "spans": [{"start": 0, "end": 5, "label": "PER"}, {"start": 14, "end": 22, "label": "LOC"}]},
            {"text": text, "entities": [[14, 22, "LOC"], [0, 5, "PER"]]},
            {
                "text": "New-York!",
                "tokens": [{"text": "New-York", "ws": False}, {"text": "!", "ws": False}],
                "spans": [{"start": 0, "end": 8, "label": "LOC"}],
            },
            {"text": "nothing here"},
        ],
    )
    docs, stats = read_labeled(path, nlp)
    assert stats.format == "jsonl" and stats.realigned_spans == 0
    assert ents(docs[0]) == ents(docs[1]) == [("Alice", "PER"), ("New York", "LOC")]
    assert [t.text for t in docs[2]] == ["New-York", "!"] and ents(docs[2]) == [("New-York", "LOC")]
    assert ents(docs[3]) == [] and all(t.ent_iob_ == "O" for t in docs[3])  # fully annotated: O, not missing


def test_jsonl_alignment_modes(tmp_path, nlp):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "Alice visited Paris", "entities": [[0, 3, "PER"]]}])
    with pytest.raises(CorpusFormatError, match=r"a.jsonl:1: span \[0, 3, 'PER'\] 'Ali' is not on token boundaries"):
        read_labeled(path, nlp)
    docs, stats = read_labeled(path, nlp, alignment_mode="expand")
    assert ents(docs[0]) == [("Alice", "PER")] and stats.realigned_spans == 1
    with pytest.raises(CorpusFormatError, match="not on token boundaries"):  # no whole token inside 'Ali'
        read_labeled(path, nlp, alignment_mode="contract")


@pytest.mark.parametrize(
    "line,fragment",
    [
        ('{"text": "a b", "spans": [', "invalid JSON"),
        ('["a b"]', "expected a JSON object"),
        ('{"txt": "a b"}', 'expected a string "text"'),
        ('{"text": "a b", "entities": [[0, 9, "X"]]}', "outside the text (length 3)"),
        ('{"text": "a b", "entities": [[2, 1, "X"]]}', "outside the text"),
        ('{"text": "a b c", "entities": [[0, 3, "X"], [2, 5, "Y"]]}', "overlaps [0, 3, 'X']"),
        ('{"text": "a b", "entities": [[0, 1]]}', "[start, end, label]"),
        ('{"text": "a b", "spans": [{"start": 0, "end": 1}]}', '"start", "end" and "label"'),
        ('{"text": "a b", "entities": [[0, 1, "X"]], "spans": []}', "not both"),
        ('{"text": "a b", "entities": [["0", 1, "X"]]}', "integers"),
        ('{"text": "a b", "tokens": [{"text": "a", "ws": false}, {"text": "b"}]}', "do not spell"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, nlp, line, fragment):
    path = write(tmp_path / "bad.jsonl", '{"text": "fine"}\n' + line + "\n")
    with pytest.raises(CorpusFormatError) as err:
        read_labeled(path, nlp)
    assert f"{path}:2:" in str(err.value) and fragment in str(err.value)


@pytest.mark.parametrize("name,text", [("e.jsonl", "\n\n"), ("e.conll", ""), ("e.iob2", "-DOCSTART- O\n\n")])
def test_empty_files(tmp_path, nlp, name, text):
    with pytest.raises(CorpusFormatError, match="empty file"):
        read_labeled(write(tmp_path / name, text), nlp)


def test_spacy_docbin_labeled(tmp_path, nlp):
    full = nlp.make_doc("Alice visited Paris")
    full.set_ents([Span(full, 0, 1, "PER")], default="outside")
    unannotated = Doc(nlp.vocab, words=["Bob", "left"])  # no entity annotation at all
    DocBin(docs=[full, unannotated]).to_disk(tmp_path / "t.spacy")
    docs, stats = read_labeled(tmp_path / "t.spacy", nlp)
    assert stats.docs_without_ent_annotation == 1
    assert ents(docs[0]) == [("Alice", "PER")] and [t.ent_iob_ for t in docs[1]] == ["O", "O"]
    write(tmp_path / "junk.spacy", "not a docbin")
    with pytest.raises(CorpusFormatError, match="not a readable .spacy DocBin"):
        read_labeled(tmp_path / "junk.spacy", nlp)


def test_format_detection(tmp_path):
    assert [detect_format(tmp_path / n) for n in ("a.spacy", "a.jsonl", "a.conll", "a.txt", "a.BIO")] == [
        "spacy",
        "jsonl",
        "conll",
        "conll",
        "conll",
    ]
    assert detect_format(tmp_path / "a.data", "jsonl") == "jsonl"
    with pytest.raises(CorpusFormatError, match="unknown format of '.json'.*--format"):
        detect_format(tmp_path / "a.json")
    with pytest.raises(CorpusFormatError, match="unknown format 'xml'"):
        detect_format(tmp_path / "a.jsonl", "xml")


def test_unlabeled_sources(tmp_path, nlp):
    write(tmp_path / "a.txt", "one line\n\ntwo  line\n")
    write_jsonl(tmp_path / "b.jsonl", [{"text": " three\nline "}, {"text": ""}])
    DocBin(docs=[nlp.make_doc("four line")]).to_disk(tmp_path / "c.spacy")
    lines = lambda path: (" ".join(line.split()) for line in path.read_text().splitlines() if line.strip())  # noqa: E731
    found = [list(unlabeled_texts(tmp_path / n, nlp, text_units=lines)) for n in ("a.txt", "b.jsonl", "c.spacy")]
    assert found == [["one line", "two line"], ["three line"], ["four line"]]
    with pytest.raises(CorpusFormatError, match="unknown unlabeled format '.csv'"):
        list(unlabeled_texts(write(tmp_path / "d.csv", "x"), nlp, text_units=lines))
    with pytest.raises(CorpusFormatError, match=r"bad.jsonl:1: invalid JSON"):
        list(unlabeled_texts(write(tmp_path / "bad.jsonl", "{"), nlp, text_units=lines))


def labeled_records(n, offset=0):
    return [
        {
            "text": f"Alice{i + offset} visited Paris",
            "entities": [
                [0, len(f"Alice{i + offset}"), "PER"],
                [len(f"Alice{i + offset}") + 9, len(f"Alice{i + offset}") + 14, "LOC"],
            ],
        }
        for i in range(n)
    ]


def test_prepare_corpus_on_jsonl_files_drops_unlabeled_copies_of_labeled_docs(tmp_path, nlp):
    train = write_jsonl(tmp_path / "train.jsonl", labeled_records(12))
    dev = write_jsonl(tmp_path / "dev.jsonl", labeled_records(3, offset=100))
    test = write_jsonl(tmp_path / "test.jsonl", labeled_records(4, offset=200))
    raw = write_jsonl(
        tmp_path / "raw.jsonl",
        [{"text": "Alice100 visited  Paris"}, {"text": "Bob went to Rome"}, {"text": "Alice3 visited Paris"}],
    )
    stats = prepare_corpus(
        train, tmp_path / "out", dev_path=dev, test_path=test, unlabeled_text=[raw], n_labeled=5, seed=1
    )
    out = {
        name: read_docbin(tmp_path / "out" / f"{name}.spacy", nlp.vocab)
        for name in ("train", "dev", "test", "unlabeled")
    }
    assert [len(out[n]) for n in ("train", "dev", "test", "unlabeled")] == [5, 3, 4, 7 + 1]
    assert out["dev"][0].text == "Alice100 visited Paris" and ents(out["test"][0]) == [
        ("Alice200", "PER"),
        ("Paris", "LOC"),
    ]
    assert stats["splits"]["unlabeled"]["dropped_as_labeled"] == {str(raw): 2}
    assert stats["labels"] == ["LOC", "PER"] and stats["inputs"]["dev"]["format"] == "jsonl"


def test_prepare_corpus_on_spacy_input_splits_dev_and_test(tmp_path, nlp):
    docs = []
    for record in labeled_records(20):
        doc = nlp.make_doc(record["text"])
        doc.set_ents([doc.char_span(s, e, label=label) for s, e, label in record["entities"]], default="outside")
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "all.spacy")
    stats = prepare_corpus(tmp_path / "all.spacy", tmp_path / "out", n_labeled=0, n_dev=4, n_test=5)
    assert [stats["splits"][n]["docs"] for n in ("train", "dev", "test", "unlabeled")] == [11, 4, 5, 0]


def test_a_dev_label_the_training_data_never_has_is_an_error_and_nothing_is_written(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", labeled_records(5))
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": "Acme rocks", "entities": [[0, 4, "ORG"]]}])
    with pytest.raises(CorpusFormatError, match=r"dev.jsonl: label\(s\) 'ORG' never occur in the training data"):
        prepare_corpus(train, tmp_path / "out", dev_path=dev, n_labeled=0, n_test=1)
    assert not (tmp_path / "out").exists()


def test_cli_corpus_on_jsonl_with_alignment_mode(tmp_path):
    train = write_jsonl(
        tmp_path / "train.jsonl", labeled_records(8) + [{"text": "Bobby visited Rome", "entities": [[0, 3, "PER"]]}]
    )
    args = ["corpus", str(train), str(tmp_path / "out"), "--n-dev", "2", "--n-test", "2", "--n-labeled", "0"]
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 1 and f"{train}:9: span [0, 3, 'PER'] 'Bob' is not on token boundaries" in bad.output
    good = CliRunner().invoke(app, args + ["--alignment-mode", "expand"])
    assert good.exit_code == 0, good.output
    assert "train: " in good.output and "as jsonl; 1 spans realigned" in good.output
