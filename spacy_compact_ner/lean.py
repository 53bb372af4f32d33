"""Inference that does not keep activations for a backward pass.

thinc's ``chain`` keeps every layer's backprop callback until the whole chain returns, also when
``is_train`` is False, so every intermediate array of a batch stays alive at once: for the student,
several times the memory of the encoded batch (measured in docs/results.md, "Speed and size").
``release_activations`` gives the chains of a model a forward that, at inference only, drops each
callback as soon as the layer returns. Training is unchanged; the models' structure and weights are
unchanged too, so saved pipelines load as before and predict the same.
"""

import importlib
from typing import Any, Callable, Tuple

from thinc.api import Model

# The module, not the `chain` function that thinc.layers exports under the same name.
_CHAIN_FORWARD = importlib.import_module("thinc.layers.chain").forward


def _no_backprop(dY: Any) -> Any:
    raise ValueError("this output was computed with is_train=False: call begin_update() to get gradients")


def lean_chain_forward(model: Model, X: Any, is_train: bool) -> Tuple[Any, Callable]:
    """thinc's chain forward for training; at inference, each layer's callback is dropped at once."""
    if is_train:
        return _CHAIN_FORWARD(model, X, is_train)
    for layer in model.layers:
        X, _ = layer(X, is_train=False)
    return X, _no_backprop


def release_activations(model: Model) -> Model:
    """Give every ``chain`` node of ``model`` (nested ones included) the lean inference forward.

    RETURNS (Model): The same model, changed in place.
    """
    for node in model.walk():
        if node._func is _CHAIN_FORWARD:
            node._func = lean_chain_forward
    return model


# ---------------------------------------------------------------------------------------------------
# Fused Maxout + LayerNorm at inference
#
# thinc's ``Maxout(normalize=True)`` is ``chain(maxout, layernorm)``: a gemm, the bias, the maxout, and
# a LayerNorm of several full-size temporaries (mean, var, centred, scaled, shifted). At inference the
# same arithmetic runs here on one output array, in place: the maxout's weights are reordered piece by
# piece, so that the pieces are contiguous column blocks and their maximum is a few vector operations.
# The parameters and the model's structure are unchanged; training runs thinc's own forward.


def is_maxout_layernorm(node: Model) -> bool:
    """Whether ``node`` is thinc's ``chain(maxout, layernorm)`` (``Maxout(normalize=True)``)."""
    return node._func in (_CHAIN_FORWARD, lean_chain_forward, maxout_layernorm_forward) and [
        layer.name for layer in node.layers
    ] == ["maxout", "layernorm"]


def piecewise_maxout_weights(maxout: Model) -> Tuple[Any, Any]:
    """The maxout's ``W`` (nO, nP, nI) as ``(nI, nP * nO)`` and ``b`` as ``(nP * nO,)``, piece-major:
    piece ``p`` of output ``o`` is column ``p * nO + o``."""
    W = maxout.get_param("W")
    nO, nP, nI = W.shape
    xp = maxout.ops.xp
    W_blocks = xp.ascontiguousarray(W.transpose(2, 1, 0).reshape(nI, nP * nO))
    b_blocks = xp.ascontiguousarray(maxout.get_param("b").T.reshape(nP * nO))
    return W_blocks, b_blocks


def maxout_layernorm_finish(maxout: Model, layernorm: Model, Y: Any, b_blocks: Any) -> Any:
    """Bias, maxout and LayerNorm of piece-major pre-activations ``Y`` (n, nP * nO), which are
    changed; RETURNS the (n, nO) output (a new array, normalized in place)."""
    xp = maxout.ops.xp
    nO = maxout.get_dim("nO")
    nP = maxout.get_dim("nP")
    Y += b_blocks
    if nP == 1:
        out = Y
    else:
        out = xp.maximum(Y[:, :nO], Y[:, nO : 2 * nO])
        for p in range(2, nP):
            xp.maximum(out, Y[:, p * nO : (p + 1) * nO], out=out)
    # LayerNorm as thinc computes it: (X - mean) / sqrt(var + 1e-8) * G + b, with var = mean((X - mean)^2).
    out -= out.mean(axis=1, keepdims=True)
    var = xp.einsum("ij,ij->i", out, out)[:, None]
    var /= nO
    var += 1e-08
    out *= var ** (-1.0 / 2.0)
    out *= layernorm.get_param("G")
    out += layernorm.get_param("b")
    return out


def maxout_layernorm_forward(model: Model, X: Any, is_train: bool) -> Tuple[Any, Callable]:
    """``chain(maxout, layernorm)``: thinc's forward for training; fused at inference."""
    if is_train:
        return _CHAIN_FORWARD(model, X, is_train)
    maxout, layernorm = model.layers
    W_blocks, b_blocks = piecewise_maxout_weights(maxout)
    Y = model.ops.gemm(X, W_blocks)
    return maxout_layernorm_finish(maxout, layernorm, Y, b_blocks), _no_backprop


def fuse_maxout_layernorm(model: Model) -> Model:
    """Give every ``chain(maxout, layernorm)`` node of ``model`` the fused inference forward.

    RETURNS (Model): The same model, changed in place.
    """
    for node in model.walk():
        if is_maxout_layernorm(node):
            node._func = maxout_layernorm_forward
    return model
