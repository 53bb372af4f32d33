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
