import itertools

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spacy_compact_ner.decoding import (
    biluo_tags,
    is_valid_biluo,
    labels_from_tags,
    log_softmax,
    softmax,
    tags_to_spans,
    viterbi,
    viterbi_batch,
)

LABELS = ["LOC", "PER"]
TAGS = biluo_tags(LABELS)


def test_tag_layout_round_trips():
    assert TAGS == ["O", "B-LOC", "I-LOC", "L-LOC", "U-LOC", "B-PER", "I-PER", "L-PER", "U-PER"]
    assert labels_from_tags(TAGS) == LABELS
    with pytest.raises(ValueError, match="Not a BILUO tag list"):
        labels_from_tags(["O", "B-LOC", "L-LOC", "I-LOC", "U-LOC"])


@pytest.mark.parametrize(
    "tags,valid",
    [
        (["O", "U-LOC", "B-PER", "I-PER", "L-PER"], True),
        ([], True),
        (["I-LOC"], False),
        (["O", "L-LOC"], False),
        (["B-LOC", "L-PER"], False),
        (["B-LOC"], False),
        (["B-LOC", "O", "L-LOC"], False),
    ],
)
def test_is_valid_biluo(tags, valid):
    assert is_valid_biluo(tags) is valid


def _brute_force(scores):
    best = -numpy.inf
    for seq in itertools.product(range(len(TAGS)), repeat=len(scores)):
        if is_valid_biluo([TAGS[i] for i in seq]):
            total = sum(scores[i, j] for i, j in enumerate(seq))
            if total > best:
                best = total
    return best


score_arrays = st.integers(0, 4).flatmap(
    lambda n: arrays("float32", (n, len(TAGS)), elements=st.floats(-20, 20, width=32))
)


@settings(max_examples=150, deadline=None)
@given(score_arrays)
def test_viterbi_is_valid_and_optimal(scores):
    path = viterbi(scores)
    assert len(path) == len(scores)
    assert is_valid_biluo([TAGS[i] for i in path])
    if len(scores):
        total = sum(scores[i, j] for i, j in enumerate(path))
        assert total == pytest.approx(_brute_force(scores), abs=1e-3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=12), st.integers(0, 2**31 - 1))
def test_batch_decoding_equals_single_and_is_valid(lengths, seed):
    rng = numpy.random.default_rng(seed)
    # Scores that favour invalid sequences (I-/L- everywhere) must still decode to valid ones.
    batch = [log_softmax(rng.normal(scale=5, size=(n, len(TAGS))).astype("float32")) for n in lengths]
    decoded = viterbi_batch(batch)
    for scores, path in zip(batch, decoded):
        assert is_valid_biluo([TAGS[i] for i in path])
        numpy.testing.assert_array_equal(path, viterbi(scores))


def test_invalid_argmax_is_repaired():
    # Argmax would be I-LOC, L-LOC: invalid without a B-LOC.
    scores = numpy.full((2, len(TAGS)), -10.0, dtype="float32")
    scores[0, TAGS.index("I-LOC")] = 0.0
    scores[0, TAGS.index("B-LOC")] = -1.0
    scores[1, TAGS.index("L-LOC")] = 0.0
    assert [TAGS[i] for i in viterbi(scores)] == ["B-LOC", "L-LOC"]


def test_tags_to_spans():
    path = [TAGS.index(t) for t in ["U-PER", "O", "B-LOC", "I-LOC", "L-LOC", "O"]]
    assert tags_to_spans(path, LABELS) == [(0, 1, "PER"), (2, 5, "LOC")]


def test_softmax_runs_on_the_given_array_module(monkeypatch):
    from tests.test_losses import DeviceArray, FakeDeviceXP, forbid_numpy

    scores = numpy.random.default_rng(0).normal(size=(4, len(TAGS))).astype("float32")
    expected = (log_softmax(scores), softmax(scores, 2.0))
    xp = FakeDeviceXP()
    forbid_numpy(monkeypatch)
    got = (log_softmax(scores.view(DeviceArray), xp=xp), softmax(scores.view(DeviceArray), 2.0, xp=xp))
    assert sorted(xp.calls) == ["exp", "exp", "log"]
    for g, e in zip(got, expected):
        assert isinstance(g, DeviceArray)
        numpy.testing.assert_allclose(g, e, rtol=1e-6)
    monkeypatch.undo()
    # Viterbi runs on the CPU whatever it gets: a plain sequence too.
    assert viterbi_batch([scores.tolist()])[0].tolist() == viterbi(scores).tolist()
