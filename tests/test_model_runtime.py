"""How the models run: no activations kept at inference (lean.py), the CPU gemm (cpu_ops.py)."""

import tracemalloc
from contextlib import contextmanager

import numpy
import pytest

from spacy_compact_ner.cpu_ops import use_cpu_gemm
from spacy_compact_ner.lean import _CHAIN_FORWARD, lean_chain_forward
from tests.util import student_nlp, toy_examples, train


@contextmanager
def thinc_chains(model):
    """Within the block, the model's lean chains run thinc's own chain forward; yields their number."""
    nodes = [node for node in model.walk() if node._func is lean_chain_forward]
    for node in nodes:
        node._func = _CHAIN_FORWARD
    try:
        yield len(nodes)
    finally:
        for node in nodes:
            node._func = lean_chain_forward


@pytest.fixture(scope="module")
def trained():
    nlp = student_nlp(**{"components.ner.model.tok2vec.width": 64})
    examples = toy_examples(nlp, 30)
    return train(nlp, examples, steps=5), examples


def _docs(nlp, examples, n_docs: int):
    texts = [eg.reference.text for eg in examples]
    return [nlp.make_doc(" ".join(texts[i % len(texts)] for i in range(j, j + 20))) for j in range(n_docs)]


def test_student_and_classifier_chains_are_lean(trained):
    nlp, _ = trained
    model = nlp.get_pipe("ner").model
    chains = [node for node in model.walk() if node._func in (lean_chain_forward, _CHAIN_FORWARD)]
    assert chains and all(node._func is lean_chain_forward for node in chains)


def test_same_predictions_and_gradients_as_thinc_chain(trained):
    nlp, examples = trained
    model = nlp.get_pipe("ner").model
    docs = _docs(nlp, examples, 8)
    lean_scores = model.predict(docs)
    lean_out, lean_backprop = model.begin_update(docs)
    d_scores = [numpy.ones_like(s) for s in lean_out]
    _zero_gradients(model)
    lean_backprop(d_scores)
    lean_grads = [g.copy() for g in _gradients(model)]
    with thinc_chains(model) as n:
        _zero_gradients(model)
        plain_scores = model.predict(docs)
        plain_out, plain_backprop = model.begin_update(docs)
        plain_backprop(d_scores)
        plain_grads = [g.copy() for g in _gradients(model)]
    assert n > 3
    for a, b in zip(lean_scores, plain_scores):
        numpy.testing.assert_array_equal(a, b)
    for a, b in zip(lean_out, plain_out):
        numpy.testing.assert_array_equal(a, b)
    assert len(lean_grads) == len(plain_grads) > 0
    for a, b in zip(lean_grads, plain_grads):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    _zero_gradients(model)


def _gradients(model):
    for node in model.walk():
        for name in node.grad_names:
            yield node.get_grad(name)


def _zero_gradients(model) -> None:
    for node in model.walk():
        for name in node.grad_names:
            node.set_grad(name, node.ops.xp.zeros_like(node.get_grad(name)))


def test_inference_output_has_no_backprop(trained):
    nlp, examples = trained
    model = nlp.get_pipe("ner").model
    _, backprop = model._func(model, _docs(nlp, examples, 2), is_train=False)
    with pytest.raises(ValueError, match="begin_update"):
        backprop(None)


def test_peak_memory_of_a_batch_is_a_fraction(trained):
    """The traced peak of one predict() on a large batch, lean vs thinc's chain."""
    nlp, examples = trained
    model = nlp.get_pipe("ner").model
    docs = _docs(nlp, examples, 64)
    model.predict(docs[:2])

    def peak() -> int:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            model.predict(docs)
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    lean = peak()
    with thinc_chains(model):
        plain = peak()
    assert lean < 0.5 * plain, (lean, plain)


def test_cpu_gemm_numpy_or_blis_same_scores(trained):
    nlp, examples = trained
    ner = nlp.get_pipe("ner")
    model = ner.model.get_ref("tok2vec")
    assert {node.ops.use_blis for node in model.walk()} == {False}  # the default: numpy's BLAS
    docs = _docs(nlp, examples, 8)
    numpy_scores = ner.model.predict(docs)
    use_cpu_gemm(model, "blis")
    try:
        assert {node.ops.use_blis for node in model.walk()} == {True}
        blis_scores = ner.model.predict(docs)
    finally:
        use_cpu_gemm(model, "numpy")
    for a, b in zip(numpy_scores, blis_scores):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_cpu_gemm_unknown_is_a_clear_error():
    with pytest.raises(ValueError, match="cpu_gemm must be one of 'numpy', 'blis', got 'mkl'"):
        student_nlp(**{"components.ner.model.tok2vec.cpu_gemm": "mkl"})
