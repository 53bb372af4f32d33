"""How the models run: no activations kept at inference (lean.py), the CPU gemm (cpu_ops.py), the
fused embedding and no per-doc split between the layers (idcnn.py, classifier.py), and the batched
decoding gives the same entities as the per-doc decoder it replaced."""

import tracemalloc
import unicodedata

import numpy
import pytest
import spacy
from spacy.attrs import ENT_ID, ENT_IOB, ENT_KB_ID, ENT_TYPE
from spacy.tokens import Span, SpanGroup
from spacy.vectors import Vectors

from spacy_compact_ner.cpu_ops import use_cpu_gemm
from spacy_compact_ner.decoding import log_softmax, tags_to_spans
from spacy_compact_ner.idcnn import _PRODUCT_TABLES, embed_forward
from spacy_compact_ner.lean import _CHAIN_FORWARD, lean_chain_forward
from tests.fixtures import toy_words
from tests.test_decoding import reference_viterbi
from tests.test_idcnn import THINC_FORWARDS, thinc_forwards
from tests.util import ents, student_nlp, toy_examples, train


@pytest.fixture(scope="module")
def trained():
    nlp = student_nlp(**{"components.ner.model.tok2vec.width": 64})
    examples = toy_examples(nlp, 30)
    return train(nlp, examples, steps=5), examples


# The small network of docs/results.md "Student variants" (no maxout pieces, 2 iterations), with static
# vectors: the embedding's fused path with its static-vectors block.
SMALL_STUDENT = {
    "components.ner.model.tok2vec.width": 16,
    "components.ner.model.tok2vec.maxout_pieces": 1,
    "components.ner.model.tok2vec.n_iter": 2,
    "components.ner.model.tok2vec.include_static_vectors": True,
    "initialize.before_init": None,
}


def _trained_with_vectors(overrides):
    nlp = student_nlp(**overrides)
    words = list(toy_words())[::2]  # half the words have a vector: rows found and missing
    rng = numpy.random.default_rng(0)
    nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=rng.normal(size=(len(words), 6)).astype("float32"))
    for row, word in enumerate(words):
        nlp.vocab.vectors.add(nlp.vocab.strings.add(word), row=row)
    examples = toy_examples(nlp, 30)
    return train(nlp, examples, steps=5), examples


@pytest.fixture(scope="module")
def trained_small():
    return _trained_with_vectors(SMALL_STUDENT)


@pytest.fixture(scope="module")
def trained_narrow():
    """The small network with hash tables and vectors projection narrower than the convolutions."""
    return _trained_with_vectors({**SMALL_STUDENT, "components.ner.model.tok2vec.embed_width": 6})


def _docs(nlp, examples, n_docs: int):
    texts = [eg.reference.text for eg in examples]
    return [nlp.make_doc(" ".join(texts[i % len(texts)] for i in range(j, j + 20))) for j in range(n_docs)]


def test_student_and_classifier_chains_are_lean(trained):
    nlp, _ = trained
    model = nlp.get_pipe("ner").model
    chains = [node for node in model.walk() if node._func in (lean_chain_forward, _CHAIN_FORWARD)]
    assert chains and all(node._func is lean_chain_forward for node in chains)
    fused = {node._func for node in model.walk()} & set(THINC_FORWARDS)
    assert fused == set(THINC_FORWARDS)


def test_same_predictions_and_gradients_as_thinc_forwards(trained):
    nlp, examples = trained
    model = nlp.get_pipe("ner").model
    docs = _docs(nlp, examples, 8)
    lean_scores = model.predict(docs)
    lean_out, lean_backprop = model.begin_update(docs)
    d_scores = [numpy.ones_like(s) for s in lean_out]
    _zero_gradients(model)
    lean_backprop(d_scores)
    lean_grads = [g.copy() for g in _gradients(model)]
    with thinc_forwards(model) as n:
        _zero_gradients(model)
        plain_scores = model.predict(docs)
        plain_out, plain_backprop = model.begin_update(docs)
        plain_backprop(d_scores)
        plain_grads = [g.copy() for g in _gradients(model)]
    assert n > 3
    # Inference: the same arithmetic in another order (fused Maxout/LayerNorm, per-offset products).
    for a, b in zip(lean_scores, plain_scores):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # Training runs thinc's own forwards: identical.
    for a, b in zip(lean_out, plain_out):
        numpy.testing.assert_array_equal(a, b)
    for a, b in zip(lean_scores, lean_out):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
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
    with thinc_forwards(model):
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


def _reference_is_blank(text: str) -> bool:
    return all(c.isspace() or unicodedata.category(c) in {"Cc", "Cf", "Zs", "Zl", "Zp"} for c in text)


def reference_set_annotations(ner, docs, scores) -> None:
    """The component's decoding before it was batched: per doc, log-softmax, blank boundaries
    forbidden, Viterbi (``reference_viterbi``), spans and the mean probability of their tokens, and
    ``doc.set_ents`` (with ``overwrite_ents`` false: the doc's entities, then the predicted spans that
    overlap none of them)."""
    n_labels = len(ner.labels)
    boundary = (1 + 4 * numpy.arange(n_labels)[:, None] + numpy.array([0, 2, 3])[None, :]).reshape(-1)
    key = ner.cfg["spans_key"]
    for doc, doc_scores in zip(docs, scores):
        log_probs = log_softmax(numpy.asarray(doc_scores, dtype="float32"))
        rows = [token.i for token in doc if _reference_is_blank(token.text)]
        if rows:
            log_probs[numpy.ix_(rows, boundary)] = -numpy.inf
        path = reference_viterbi(log_probs)
        spans = [Span(doc, start, end, label=label) for start, end, label in tags_to_spans(path, ner.labels)]
        token_probs = numpy.exp(log_probs[numpy.arange(len(path)), path])
        scores_ = [float(token_probs[s.start : s.end].mean()) for s in spans]
        if key:
            doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs={"scores": scores_})
        if not ner.cfg["overwrite_ents"] and doc.ents:
            kept = list(doc.ents)
            spans = kept + [s for s in spans if not any(s.start < k.end and k.start < s.end for k in kept)]
        doc.set_ents(spans, default="outside")


def _many_docs(nlp, examples, n_docs: int):
    """``n_docs`` docs of 1 to 60 toy sentences' words, some with blank tokens (a zero-width space, a
    newline, a NUL) and some empty."""
    texts = [eg.reference.text for eg in examples]
    rng = numpy.random.default_rng(0)
    docs = []
    for j in range(n_docs):
        words = " ".join(texts[(j + i) % len(texts)] for i in range(1 + j % 12)).split()
        words = words[: 1 + int(rng.integers(0, 60))] if j % 17 else []
        for blank in ("\u200b", "\n", "\x00"):
            if words and rng.random() < 0.2:
                words.insert(int(rng.integers(0, len(words))), blank)
        docs.append(nlp.make_doc(" ".join(words)))
    return docs


def _annotations(docs, key: str):
    return [
        (ents(doc), [(s.start, s.end, s.label_) for s in doc.spans[key]], doc.spans[key].attrs["scores"])
        for doc in docs
    ]


def test_batched_decoding_gives_the_same_entities_and_scores(trained):
    """set_annotations (one batch) against the per-doc reference, on a trained student's scores."""
    nlp, examples = trained
    ner = nlp.get_pipe("ner")
    docs = _many_docs(nlp, examples, 300)
    assert any(not len(doc) for doc in docs) and any(len(doc) > 40 for doc in docs)
    scores = ner.predict(docs)
    ref_docs = [nlp.make_doc(doc.text) for doc in docs]
    reference_set_annotations(ner, ref_docs, scores)
    ner.set_annotations(docs, scores)
    got, expected = _annotations(docs, ner.cfg["spans_key"]), _annotations(ref_docs, ner.cfg["spans_key"])
    assert sum(len(e[0]) for e in expected) > 50  # the model predicts entities: the comparison means something
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    numpy.testing.assert_allclose(sum((g[2] for g in got), []), sum((e[2] for e in expected), []), rtol=1e-6)


@pytest.mark.parametrize("student", ["trained", "trained_small", "trained_narrow"])
def test_same_entities_as_the_code_before(student, request):
    """The whole inference (fused forwards, batched decoding) against the code before it (thinc's
    forwards, per-doc decoding), through ``nlp.pipe`` on a trained student (the default network, the
    small one with static vectors, and that one with narrower tables): the same entities and span
    scores."""
    nlp, examples = request.getfixturevalue(student)
    ner = nlp.get_pipe("ner")
    texts = [doc.text for doc in _many_docs(nlp, examples, 300)]
    new = list(nlp.pipe(texts, batch_size=64))
    old = [nlp.make_doc(text) for text in texts]
    with thinc_forwards(ner.model) as n_changed:
        for i in range(0, len(old), 64):
            batch = old[i : i + 64]
            reference_set_annotations(ner, batch, ner.predict(batch))
    assert n_changed > 10
    got, expected = _annotations(new, ner.cfg["spans_key"]), _annotations(old, ner.cfg["spans_key"])
    assert sum(len(e[0]) for e in expected) > 50
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    numpy.testing.assert_allclose(sum((g[2] for g in got), []), sum((e[2] for e in expected), []), rtol=1e-4)


@pytest.mark.parametrize("student", ["trained_small", "trained_narrow"])
def test_small_student_runs_the_fused_embedding(student, request):
    nlp, examples = request.getfixturevalue(student)
    model = nlp.get_pipe("ner").model
    assert [node._func for node in model.walk()].count(embed_forward) == 1
    assert any(node.name == "static_vectors" for node in model.walk())
    docs = _docs(nlp, examples, 8)
    fast = model.predict(docs)
    with thinc_forwards(model):
        reference = model.predict(docs)
    assert [a.shape for a in fast] == [b.shape for b in reference]
    for a, b in zip(fast, reference):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_product_tables_follow_the_weights(trained_small):
    """The embedding's cached table products are remade when training changes the weights in place."""
    nlp, examples = trained_small
    model = nlp.get_pipe("ner").model
    docs = _docs(nlp, examples, 4)
    model.predict(docs)
    E = next(node for node in model.walk() if node.name == "hashembed").get_param("E")
    saved = E.copy()
    try:
        E += 0.5  # in place, as the optimizer does
        fast = model.predict(docs)
        with thinc_forwards(model):
            reference = model.predict(docs)
        for a, b in zip(fast, reference):
            numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    finally:
        E[...] = saved
    assert len(_PRODUCT_TABLES) <= 8


def _pre_annotated(nlp, texts):
    """Docs of ``texts`` with earlier annotation for set_annotations to keep or overwrite: on every
    third doc an entity with a knowledge-base ID and an entity ID, on every fifth a knowledge-base ID
    on a token outside any entity."""
    docs = [nlp.make_doc(text) for text in texts]
    for j, doc in enumerate(docs):
        if j % 3 == 0 and len(doc) > 3:
            doc.set_ents([Span(doc, 1, 3, label="CUSTOM", kb_id="Q1", span_id="earlier")])
        if j % 5 == 0 and len(doc):
            doc[-1].ent_kb_id_ = "Q2"
    return docs


@pytest.mark.parametrize("overwrite_ents", [True, False])
def test_set_annotations_writes_what_set_ents_did(trained_small, overwrite_ents):
    """Token by token the same entity attributes (IOB, type, knowledge-base and entity IDs) and the same
    span groups as the per-doc ``Span`` / ``SpanGroup`` / ``set_ents`` code before, on docs with earlier
    entities and IDs, whether the component overwrites them or keeps them."""
    nlp, examples = trained_small
    ner = nlp.get_pipe("ner")
    texts = [doc.text for doc in _many_docs(nlp, examples, 120)]
    new, old = _pre_annotated(nlp, texts), _pre_annotated(nlp, texts)
    saved = ner.cfg["overwrite_ents"]
    ner.cfg["overwrite_ents"] = overwrite_ents
    try:
        scores = ner.predict(new)
        ner.set_annotations(new, scores)
        reference_set_annotations(ner, old, scores)
    finally:
        ner.cfg["overwrite_ents"] = saved
    attrs = [ENT_IOB, ENT_TYPE, ENT_KB_ID, ENT_ID]
    for got, expected in zip(new, old):
        numpy.testing.assert_array_equal(got.to_array(attrs), expected.to_array(attrs))
    key = ner.cfg["spans_key"]
    got, expected = _annotations(new, key), _annotations(old, key)
    assert sum(len(e[1]) for e in expected) > 50 and any(e[0] != e[1] for e in expected) is not overwrite_ents
    assert [g[:2] for g in got] == [e[:2] for e in expected]

    def ids(docs):
        return [[(span.kb_id, span.id) for span in doc.spans[key]] for doc in docs]

    assert ids(new) == ids(old)
    numpy.testing.assert_allclose(sum((g[2] for g in got), []), sum((e[2] for e in expected), []), rtol=1e-6)


def test_set_annotations_without_a_span_group(trained_small):
    """``spans_key`` None: the same entities as the code before, and no span group."""
    nlp, examples = trained_small
    ner = nlp.get_pipe("ner")
    docs = _many_docs(nlp, examples, 60)
    old = [nlp.make_doc(doc.text) for doc in docs]
    scores = ner.predict(docs)
    saved = ner.cfg["spans_key"]
    ner.cfg["spans_key"] = None
    try:
        ner.set_annotations(docs, scores)
        reference_set_annotations(ner, old, scores)
    finally:
        ner.cfg["spans_key"] = saved
    assert [ents(doc) for doc in docs] == [ents(doc) for doc in old]
    assert sum(len(doc.ents) for doc in docs) > 10
    assert not any(doc.spans for doc in docs)


def test_narrow_tables_round_trip_through_disk(trained_narrow, tmp_path):
    """A student with ``embed_width`` set is saved and loaded from its config like any other."""
    nlp, examples = trained_narrow
    texts = [doc.text for doc in _docs(nlp, examples, 6)]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.config["components"]["ner"]["model"]["tok2vec"]["embed_width"] == 6
    tables = [node.get_dim("nO") for node in loaded.get_pipe("ner").model.walk() if node.name == "hashembed"]
    assert tables == [6, 6, 6, 6]
    assert [ents(d) for d in loaded.pipe(texts)] == [ents(d) for d in nlp.pipe(texts)]
    for a, b in zip(
        loaded.get_pipe("ner").predict([loaded.make_doc(t) for t in texts]),
        nlp.get_pipe("ner").predict([nlp.make_doc(t) for t in texts]),
    ):
        numpy.testing.assert_array_equal(a, b)
