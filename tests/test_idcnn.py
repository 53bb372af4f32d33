"""The ID-CNN's dilated window and its inference convolutions (spacy_compact_ner/idcnn.py)."""

from contextlib import contextmanager

import numpy
import pytest
from thinc.api import Maxout
from thinc.types import Ragged

from spacy_compact_ner.classifier import classifier_forward
from spacy_compact_ner.idcnn import (
    _RESIDUAL_FORWARD,
    _conv,
    _residual_conv,
    build_idcnn_encoder,
    conv_forward,
    dilated_window,
    embed_forward,
    idcnn_forward,
    residual_conv_forward,
)
from spacy_compact_ner.lean import _CHAIN_FORWARD, fuse_maxout_layernorm, lean_chain_forward, maxout_layernorm_forward

# The inference forwards of this package and the thinc forwards they replace at inference.
THINC_FORWARDS = {
    lean_chain_forward: _CHAIN_FORWARD,
    maxout_layernorm_forward: _CHAIN_FORWARD,
    conv_forward: _CHAIN_FORWARD,
    residual_conv_forward: _RESIDUAL_FORWARD,
    embed_forward: _CHAIN_FORWARD,
    idcnn_forward: _CHAIN_FORWARD,
    classifier_forward: _CHAIN_FORWARD,
}


@contextmanager
def thinc_forwards(model):
    """Within the block, the model runs thinc's own forwards (chain, residual) instead of the lean
    chains and the fused Maxout/LayerNorm and convolutions: the code before them. Yields the number of
    nodes changed."""
    nodes = [(node, node._func) for node in model.walk() if node._func in THINC_FORWARDS]
    for node, func in nodes:
        node._func = THINC_FORWARDS[func]
    try:
        yield len(nodes)
    finally:
        for node, func in nodes:
            node._func = func


LENGTHS = [[5, 0, 1, 3, 7], [1], [2, 2], [12], [0, 4, 0]]


def reference_window(X: numpy.ndarray, lengths, dilation: int) -> numpy.ndarray:
    """Each token's vector with those ``dilation`` to its left and right in the same doc (zeros outside)."""
    width = X.shape[1]
    Y = numpy.zeros((X.shape[0], 3 * width), dtype=X.dtype)
    start = 0
    for length in lengths:
        for i in range(length):
            row = start + i
            Y[row, width : 2 * width] = X[row]
            if i - dilation >= 0:
                Y[row, :width] = X[row - dilation]
            if i + dilation < length:
                Y[row, 2 * width :] = X[row + dilation]
        start += length
    return Y


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_window_matches_reference_and_backprop_is_its_transpose(lengths, dilation):
    rng = numpy.random.default_rng(dilation)
    n, width = sum(lengths), 4
    X = rng.normal(size=(n, width)).astype("float32")
    model = dilated_window(dilation)
    Yr, backprop = model(Ragged(X, numpy.asarray(lengths, dtype="int32")), is_train=True)
    numpy.testing.assert_array_equal(Yr.dataXd, reference_window(X, lengths, dilation))
    # The window is linear: backprop must be its transpose, <F(X), dY> == <X, F^T(dY)>.
    dY = rng.normal(size=(n, 3 * width)).astype("float32")
    dX = backprop(Ragged(dY, Yr.lengths)).dataXd
    assert dX.shape == X.shape
    numpy.testing.assert_allclose(float((Yr.dataXd * dY).sum()), float((X * dX).sum()), rtol=1e-4, atol=1e-4)
    for row in range(n):  # each input row's gradient, one basis vector at a time
        e = numpy.zeros_like(X)
        e[row] = 1.0
        F_e = reference_window(e, lengths, dilation)
        numpy.testing.assert_allclose(dX[row].sum(), float((F_e * dY).sum()), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lengths", LENGTHS + [[]])
@pytest.mark.parametrize("dilation", [1, 2, 5])
@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_inference_convolution_equals_window_then_maxout(lengths, dilation, pieces):
    """The per-offset products with the fused Maxout/LayerNorm (inference) against thinc's chain over
    the 3x-wide window (training's forward), alone and inside the residual block."""
    rng = numpy.random.default_rng(dilation * 10 + pieces)
    width = 6
    X = rng.normal(size=(sum(lengths), width)).astype("float32")
    Xr = Ragged(X, numpy.asarray(lengths, dtype="int32"))
    for model in (_conv(width, dilation, pieces), _residual_conv(width, dilation, pieces)):
        model.initialize(X=Ragged(rng.normal(size=(4, width)).astype("float32"), numpy.asarray([4], "int32")))
        for node in model.walk():  # non-trivial LayerNorm and bias
            for name in node.param_names:
                node.set_param(name, rng.normal(size=node.get_param(name).shape).astype("float32"))
        fast, backprop = model(Xr, is_train=False)
        with pytest.raises(ValueError, match="begin_update"):
            backprop(fast)
        with thinc_forwards(model):
            reference = model(Xr, is_train=False)[0]
        trained, _ = model(Xr, is_train=True)
        assert fast.dataXd.shape == (len(X), width)
        if not len(X):  # thinc's maxout gives an empty batch a (0, 0) array
            continue
        numpy.testing.assert_allclose(fast.dataXd, reference.dataXd, rtol=1e-4, atol=1e-5)
        numpy.testing.assert_array_equal(trained.dataXd, reference.dataXd)
        numpy.testing.assert_array_equal(fast.lengths, Xr.lengths)


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_fused_maxout_layernorm_equals_thinc(pieces):
    rng = numpy.random.default_rng(pieces)
    model = fuse_maxout_layernorm(Maxout(nO=7, nI=5, nP=pieces, normalize=True))
    model.initialize(X=rng.normal(size=(3, 5)).astype("float32"))
    layernorm = model.get_ref("layernorm") if model.has_ref("layernorm") else model.layers[1]
    layernorm.set_param("G", rng.normal(size=7).astype("float32"))
    layernorm.set_param("b", rng.normal(size=7).astype("float32"))
    model.layers[0].set_param("b", rng.normal(size=(7, pieces)).astype("float32"))
    assert model._func is maxout_layernorm_forward
    X = rng.normal(size=(50, 5)).astype("float32") * 3
    fast = model.predict(X)
    with thinc_forwards(model):
        reference = model.predict(X)
    numpy.testing.assert_allclose(fast, reference, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_array_equal(model.begin_update(X)[0], reference)


def test_built_encoder_uses_the_inference_forwards():
    model = build_idcnn_encoder(width=8, rows=[50, 50, 50, 50], dilations=[1, 2], n_iter=2)
    funcs = [node._func for node in model.walk()]
    assert funcs.count(conv_forward) == 3  # the first convolution and the two of the shared block
    assert funcs.count(residual_conv_forward) == 2
    assert funcs.count(maxout_layernorm_forward) == 4  # the embedding's Maxout and the convolutions'


@pytest.mark.parametrize("vectors", [False, True])
def test_embed_width_narrows_the_tables_not_the_output(vectors):
    """``embed_width``: tables and vectors projection that wide, the embedding's maxout maps their
    concatenation to ``width``; the encoder's output keeps ``width``."""
    rows = [50, 20, 30, 40]
    default = build_idcnn_encoder(width=16, rows=rows, include_static_vectors=vectors)
    narrow = build_idcnn_encoder(width=16, rows=rows, include_static_vectors=vectors, embed_width=4)
    same = build_idcnn_encoder(width=16, rows=rows, include_static_vectors=vectors, embed_width=16)
    for model in (default, narrow, same):
        for node in model.walk():
            if node.name == "static_vectors":
                node.set_dim("nM", 5)
        model.initialize()
    n_params = [
        sum(node.get_param(name).size for node in m.walk() for name in node.param_names)
        for m in (default, narrow, same)
    ]
    n_inputs = 4 + vectors
    # tables, vectors projection and the 3-piece maxout shrink; the convolutions are the same
    saved = sum(rows) * (16 - 4) + vectors * 5 * (16 - 4) + 3 * 16 * n_inputs * (16 - 4)
    assert n_params[0] - n_params[1] == saved
    assert n_params[2] == n_params[0]
    tables = [node.get_dim("nO") for node in narrow.walk() if node.name == "hashembed"]
    assert tables == [4, 4, 4, 4]


def test_embed_width_must_be_positive():
    with pytest.raises(ValueError, match="embed_width"):
        build_idcnn_encoder(width=8, rows=[10, 10, 10, 10], embed_width=0)
