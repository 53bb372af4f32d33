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
    ragged_spans,
    softmax,
    tags_to_spans,
    viterbi,
    viterbi_batch,
    viterbi_ragged,
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


def reference_viterbi(scores: numpy.ndarray) -> numpy.ndarray:
    """The decoder before the batched one (one doc, original tag order, a padded O-only last step)."""
    n_tags = scores.shape[1]
    n_labels = (n_tags - 1) // 4
    if len(scores) == 0:
        return numpy.zeros((0,), dtype="int32")
    emissions = numpy.full((len(scores) + 1, n_tags), -numpy.inf, dtype="float32")
    emissions[:, 0] = 0.0
    emissions[: len(scores)] = scores
    k = numpy.arange(n_labels)
    b_cols, i_cols = 1 + 4 * k, 2 + 4 * k
    outside_cols = numpy.concatenate([[0], 3 + 4 * k, 4 + 4 * k])
    start_cols = numpy.concatenate([[0], b_cols, 4 + 4 * k])
    cont_cols = numpy.concatenate([i_cols, 3 + 4 * k])
    backptr = numpy.zeros((len(emissions), n_tags), dtype="int32")
    delta = numpy.full((n_tags,), -numpy.inf, dtype="float32")
    delta[start_cols] = emissions[0][start_cols]
    for t in range(1, len(emissions)):
        out_arg = outside_cols[delta[outside_cols].argmax()]
        use_i = delta[i_cols] > delta[b_cols]
        in_best = numpy.where(use_i, delta[i_cols], delta[b_cols])
        new = numpy.full_like(delta, -numpy.inf)
        new[start_cols] = delta[out_arg] + emissions[t][start_cols]
        backptr[t][start_cols] = out_arg
        new[cont_cols] = numpy.concatenate([in_best, in_best]) + emissions[t][cont_cols]
        backptr[t][cont_cols] = numpy.concatenate([numpy.where(use_i, i_cols, b_cols)] * 2)
        delta = new
    path = numpy.zeros((len(emissions),), dtype="int32")
    for t in range(len(emissions) - 1, 0, -1):
        path[t - 1] = backptr[t, path[t]]
    return path[: len(scores)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=20),
    st.integers(1, 4),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_batched_decoder_equals_reference_exactly(lengths, n_labels, seed, ties):
    """The same paths as the per-doc decoder, ties and -inf (forbidden) scores included."""
    rng = numpy.random.default_rng(seed)
    n_tags = 1 + 4 * n_labels
    batch = []
    for n in lengths:
        scores = rng.normal(scale=3, size=(n, n_tags)).astype("float32")
        if ties:  # few distinct values: many equal path scores
            scores = numpy.round(scores).astype("float32")
        scores[rng.random(size=scores.shape) < 0.1] = -numpy.inf
        scores[:, 0] = numpy.maximum(scores[:, 0], -5.0)  # O stays possible, as after log_softmax
        batch.append(scores)
    decoded = viterbi_batch(batch)
    assert [len(p) for p in decoded] == lengths
    for scores, path in zip(batch, decoded):
        numpy.testing.assert_array_equal(path, reference_viterbi(scores))
    flat = viterbi_ragged(numpy.concatenate(batch), lengths)
    numpy.testing.assert_array_equal(flat, numpy.concatenate(decoded))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=10), st.integers(0, 2**31 - 1))
def test_ragged_spans_equal_per_doc_spans(lengths, seed):
    rng = numpy.random.default_rng(seed)
    batch = [log_softmax(rng.normal(scale=4, size=(n, len(TAGS))).astype("float32")) for n in lengths]
    paths = viterbi_batch(batch)
    docs, starts, ends, labels = ragged_spans(numpy.concatenate(paths), lengths)
    offsets = numpy.cumsum([0, *lengths])
    got = [[] for _ in lengths]
    for d, s, e, k in zip(docs, starts, ends, labels):
        got[d].append((int(s - offsets[d]), int(e - offsets[d]), LABELS[k]))
    assert got == [tags_to_spans(p, LABELS) for p in paths]


def test_viterbi_ragged_rejects_bad_input():
    with pytest.raises(ValueError, match="do not add up"):
        viterbi_ragged(numpy.zeros((3, len(TAGS)), dtype="float32"), [1, 1])
    with pytest.raises(ValueError, match="4 \\* n_labels \\+ 1"):
        viterbi_ragged(numpy.zeros((3, 4), dtype="float32"), [3])
    with pytest.raises(ValueError, match="one n_tags"):
        viterbi_batch([numpy.zeros((2, 9), "float32"), numpy.zeros((2, 5), "float32")])
