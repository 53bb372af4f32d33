"""The token classifier head shared by teacher and student: encoder, then one linear layer that
scores the BILUO tags (logits, so distillation can soften them with a temperature)."""

from typing import List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, chain, with_array, zero_init
from thinc.types import Floats2d

from .lean import release_activations


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
    return release_activations(model)
