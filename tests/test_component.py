import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from tests.util import ents, student_nlp, toy_examples, train


@pytest.fixture(scope="module")
def trained():
    nlp = student_nlp()
    examples = toy_examples(nlp, 30)
    return train(nlp, examples, steps=25), examples


def test_predict_before_initialize_is_e109():
    nlp = student_nlp()
    with pytest.raises(ValueError, match=r"E109.*ner"):
        nlp("Alice visited Paris .")


def test_initialize_without_labels_is_a_clear_error():
    nlp = student_nlp()
    unlabeled = [Example(nlp.make_doc("no entities here"), nlp.make_doc("no entities here"))]
    with pytest.raises(ValueError, match="has no entity labels"):
        nlp.initialize(lambda: unlabeled)


def test_labels_from_init_labels_and_add_label():
    nlp = student_nlp()
    ner = nlp.get_pipe("ner")
    assert ner.add_label("PER") == 1 and ner.add_label("PER") == 0
    nlp.initialize(lambda: toy_examples(nlp, 5))
    # Labels added by hand come first; the examples add the rest, sorted.
    assert ner.labels == ("PER", "LOC", "ORG")
    with pytest.raises(ValueError, match="after it was initialized"):
        ner.add_label("MISC")


def test_initialize_reads_spacy_init_labels_output():
    nlp = student_nlp()
    nlp.config["initialize"]["components"]["ner"] = {"labels": ["ORG", "PER", "LOC", "MISC"]}
    nlp.initialize(lambda: toy_examples(nlp, 5))
    ner = nlp.get_pipe("ner")
    assert ner.labels == ("ORG", "PER", "LOC", "MISC")
    assert ner.label_data == ner.labels
    assert ner.model.get_ref("output_layer").get_dim("nO") == 17


def test_overfit_reaches_f1_one(trained):
    nlp, examples = trained
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0


def test_entities_are_valid_and_carry_confidence(trained):
    nlp, _ = trained
    doc = nlp("yesterday , Carol Bobson saw Tokyo for Acme Corp .")
    assert ents(doc) == [(2, 4, "PER"), (5, 6, "LOC"), (7, 9, "ORG")]
    group = doc.spans["compact_ner"]
    assert [(s.start, s.end) for s in group] == [(e.start, e.end) for e in doc.ents]
    scores = group.attrs["scores"]
    assert len(scores) == 3 and all(0.5 < s <= 1.0 for s in scores)


def test_round_trip_disk_and_bytes(trained, tmp_path):
    nlp, _ = trained
    texts = ["Alice visited Paris .", "Dave Erinson left Lima for Globex Corp .", "nothing here"]
    before = [nlp.get_pipe("ner").predict([nlp.make_doc(t)])[0] for t in texts]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    after = [loaded.get_pipe("ner").predict([loaded.make_doc(t)])[0] for t in texts]
    for a, b in zip(before, after):
        numpy.testing.assert_array_equal(a, b)
    assert [ents(d) for d in loaded.pipe(texts)] == [ents(d) for d in nlp.pipe(texts)]
    fresh = student_nlp()
    fresh.get_pipe("ner").from_bytes(nlp.get_pipe("ner").to_bytes())
    assert fresh.get_pipe("ner").labels == nlp.get_pipe("ner").labels
    assert [ents(d) for d in fresh.pipe(texts)] == [ents(d) for d in nlp.pipe(texts)]


def test_empty_and_single_token_docs(trained):
    nlp, _ = trained
    docs = list(nlp.pipe(["", "Paris", "", "   ", "a"]))
    assert [len(d) for d in docs] == [0, 1, 0, 1, 1]
    assert docs[0].ents == ()
    assert all(len(d.ents) <= 1 for d in docs)
    assert nlp("").ents == ()
    # A batch of only empty docs.
    assert [d.ents for d in nlp.pipe(["", ""])] == [(), ()]


def test_overwrite_ents_false_keeps_earlier_entities(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ner")
    doc = nlp.make_doc("Alice visited Paris .")
    doc.set_ents([Span(doc, 0, 2, label="CUSTOM")])
    ner.cfg["overwrite_ents"] = False
    try:
        kept = ner(doc)
    finally:
        ner.cfg["overwrite_ents"] = True
    assert ents(kept) == [(0, 2, "CUSTOM"), (2, 3, "LOC")]  # PER overlapped CUSTOM: dropped
    doc = nlp.make_doc("Alice visited Paris .")
    doc.set_ents([Span(doc, 0, 1, label="CUSTOM")])
    assert ents(ner(doc)) == [(0, 1, "PER"), (2, 3, "LOC")]  # overwritten by default


def test_unknown_gold_label_is_a_clear_error(trained):
    nlp, _ = trained
    ref = Doc(nlp.vocab, words=["Alice", "visited", "Paris"])
    ref.set_ents([Span(ref, 0, 1, label="ANIMAL")], default="outside")
    with pytest.raises(ValueError, match="'U-ANIMAL'.*not one of"):
        nlp.update([Example(nlp.make_doc(ref.text), ref)])


def test_retokenized_predicted_docs_still_train(trained):
    # spacy.Corpus re-tokenizes the text; gold is aligned with Example alignment.
    nlp, _ = trained
    ref = Doc(nlp.vocab, words=["Alice", "visited", "Paris", "."], spaces=[True, True, False, False])
    ref.set_ents([Span(ref, 0, 1, label="PER")], default="outside")
    eg = Example(nlp.make_doc("Alice visited Paris."), ref)
    losses = nlp.update([eg])
    assert numpy.isfinite(losses["ner"])
