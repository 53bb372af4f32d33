"""The token classifier head shared by teacher and student: encoder, then one linear layer that
scores the BILUO tags (logits, so distillation can soften them with a temperature)."""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, chain, with_array, zero_init
from thinc.types import Floats2d, Ragged

from .idcnn import idcnn_forward, idcnn_inference, split_rows
from .lean import _CHAIN_FORWARD, _no_backprop, lean_chain_forward, release_activations


@registry.architectures("spacy-compact-ner.TokenClassifier.v1")
def build_token_classifier(
    *, tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None
) -> Model[List[Doc], List[Floats2d]]:
    """Score every BILUO tag of every token.

    tok2vec (Model[List[Doc], List[Floats2d]]): The token encoder (student CNN or teacher body).
    nO (Optional[int]): Number of tags; set by the component from its labels when left empty.
    RETURNS (Model[List[Doc], List[Floats2d]]): Unnormalised tag scores, one array per doc.
    """
    output_layer = Linear(nO=nO, init_W=zero_init)
    model = chain(tok2vec, with_array(output_layer))
    model.name = "compact_ner_classifier"
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    release_activations(model)
    model._func = classifier_forward
    return model


def classifier_forward(
    model: Model[List[Doc], List[Floats2d]], docs: List[Doc], is_train: bool
) -> Tuple[List, Callable]:
    """``chain(tok2vec, with_array(output_layer))``: thinc's chain for training; at inference on the
    ID-CNN, the output layer runs on the encoder's concatenated rows (no split per doc and
    concatenation again in between), then the scores are split per doc."""
    if is_train:
        return _CHAIN_FORWARD(model, docs, is_train)
    tok2vec = model.layers[0]
    if tok2vec._func is not idcnn_forward:
        return lean_chain_forward(model, docs, is_train)
    Xr = idcnn_inference(tok2vec, docs)
    output_layer = model.get_ref("output_layer")
    scores = output_layer(Xr.dataXd, is_train=False)[0]
    return split_rows(Ragged(scores, Xr.lengths)), _no_backprop
