import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import NumpyOps

from spacy_compact_ner.component import INIT_SAMPLE_SIZE
from spacy_compact_ner.store import set_teacher_logits
from tests.test_losses import DeviceArray, FakeDeviceXP, forbid_numpy
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


def _counting(examples):
    """A ``get_examples`` that streams ``examples`` and records how many each call yielded."""
    passes = []

    def get_examples():
        passes.append(0)
        for eg in examples:
            passes[-1] += 1
            yield eg

    return get_examples, passes


def test_labels_come_from_every_example_and_the_model_from_a_sample():
    nlp = student_nlp()
    ner = nlp.get_pipe("ner")
    examples = toy_examples(nlp, 3 * INIT_SAMPLE_SIZE)
    late = examples[-1].reference  # a label seen only after the sample must still be found
    late.set_ents([Span(late, 0, 1, label="MISC")], default="outside")
    get_examples, passes = _counting(examples)
    ner.initialize(get_examples, nlp=nlp)
    assert ner.labels == ("LOC", "MISC", "ORG", "PER")
    # spaCy's validation pass, one streamed pass for the labels, the model's sample.
    assert passes == [len(examples), len(examples), INIT_SAMPLE_SIZE]


def test_given_labels_read_only_a_sample():
    nlp = student_nlp()
    ner = nlp.get_pipe("ner")
    examples = toy_examples(nlp, 3 * INIT_SAMPLE_SIZE)
    get_examples, passes = _counting(examples)
    ner.initialize(get_examples, nlp=nlp, labels=["PER", "ORG", "LOC"])
    assert ner.labels == ("PER", "ORG", "LOC")
    # spaCy's validation pass, then the sample checked for teacher labels and the model's sample.
    assert passes == [len(examples), INIT_SAMPLE_SIZE, INIT_SAMPLE_SIZE]


def _with_teacher(nlp, examples, seed=0):
    """Copies of ``examples``: even ones keep gold and get teacher logits, odd ones only teacher logits."""
    rng = numpy.random.default_rng(seed)
    tags = nlp.get_pipe("ner").tags
    out = []
    for i, eg in enumerate(examples):
        ref = eg.reference.copy() if i % 2 == 0 else nlp.make_doc(eg.reference.text)
        set_teacher_logits(ref, rng.normal(size=(len(ref), len(tags))), tags)
        out.append(Example(nlp.make_doc(ref.text), ref))
    return out


@pytest.mark.parametrize(
    "weights,keys",
    [
        ({}, ["ner_gold", "ner_kd", "ner_pseudo_label"]),
        ({"kd_weight": 0.0, "gold_weight": 2.0}, ["ner_gold", "ner_pseudo_label"]),
        ({"kd_weight": 0.0, "pseudo_label_weight": 0.0}, []),  # one term: it is the total
    ],
)
def test_update_records_each_weighted_loss_term(trained, weights, keys):
    trained_nlp, examples = trained
    nlp = student_nlp(**{f"components.ner.loss.{k}": v for k, v in weights.items()})
    ner = nlp.get_pipe("ner")
    ner.initialize(lambda: examples, nlp=nlp, labels=trained_nlp.get_pipe("ner").labels)
    assert ner.loss_keys == keys
    losses = nlp.update(_with_teacher(nlp, examples[:6]))
    assert sorted(losses) == sorted(["ner", *keys])
    assert all(losses[key] > 0 for key in keys)
    if keys:
        assert sum(losses[key] for key in keys) == pytest.approx(losses["ner"], rel=1e-5)
    # Empty docs: the keys are there, at 0.
    empty = nlp.make_doc("")
    assert nlp.update([Example(empty, empty)]) == {key: 0.0 for key in ["ner", *keys]}


class FakeDeviceOps(NumpyOps):
    """NumpyOps whose arrays are ``DeviceArray``s, made by a recording ``xp``; ``to_numpy`` gives
    plain numpy arrays, as a copy to the host would."""

    def __init__(self) -> None:
        super().__init__()
        self.xp = FakeDeviceXP()

    def asarray(self, data, dtype=None):
        return numpy.asarray(data, dtype=dtype).view(DeviceArray)

    def to_numpy(self, data, *, byte_order=None):
        return numpy.asarray(data)


def test_the_loss_runs_on_the_model_device(trained, monkeypatch):
    nlp, examples = trained
    ner = nlp.get_pipe("ner")
    batch = _with_teacher(nlp, examples[:6])
    host_scores = ner.model.predict([eg.predicted for eg in batch])
    expected_loss, expected_grads = ner.get_loss(batch, host_scores)
    ops = FakeDeviceOps()
    seen = {}
    real_loss = ner.loss

    def spy(logits, gold, teacher, has_teacher, *, xp):
        seen.update(arrays=(logits, gold, teacher, has_teacher), xp=xp)
        return real_loss(logits, gold, teacher, has_teacher, xp=xp)

    monkeypatch.setattr(ner, "loss", spy)
    monkeypatch.setattr(ner.model, "ops", ops)
    forbid_numpy(monkeypatch)
    loss, grads = ner.get_loss(batch, [ops.asarray2f(s) for s in host_scores])
    # The scores stay on the device, the targets are moved there, the loss runs on ops.xp.
    assert seen["xp"] is ops.xp and "concatenate" in ops.xp.calls
    assert all(isinstance(array, DeviceArray) for array in seen["arrays"])
    assert all(isinstance(grad, DeviceArray) for grad in grads)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    for grad, expected in zip(grads, expected_grads):
        numpy.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_set_annotations_accepts_device_scores(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ner")
    doc = nlp.make_doc("yesterday , Carol Bobson saw Tokyo for Acme Corp .")
    scores = ner.predict([doc])
    ner.set_annotations([doc], [FakeDeviceOps().asarray2f(scores[0])])
    assert ents(doc) == [(2, 4, "PER"), (5, 6, "LOC"), (7, 9, "ORG")]
