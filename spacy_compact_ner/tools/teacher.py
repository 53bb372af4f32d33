"""The teacher body: a transformer listener, optionally concatenated with hashed case and shape
features (the only registry encoder is uncased, so it cannot see capitalisation by itself)."""

from pathlib import Path
from typing import Callable, List, Optional

from spacy.language import Language
from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.ml.staticvectors import StaticVectors
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain, concatenate, ragged2list
from thinc.types import Floats2d


@registry.architectures("spacy-compact-ner.TransformerWithFeatures.v1")
def build_transformer_with_features(
    *,
    tok2vec: Model[List[Doc], List[Floats2d]],
    feature_width: int = 32,
    feature_attrs: List[str] = ["SHAPE", "PREFIX", "SUFFIX"],
    feature_rows: List[int] = [1000, 500, 2000],
    include_static_vectors: bool = False,
) -> Model[List[Doc], List[Floats2d]]:
    """Concatenate a token encoder (typically a spacy-transformers listener) with hashed features
    and, optionally, the vocab's static word vectors (loaded by ``[initialize] vectors``).

    tok2vec (Model[List[Doc], List[Floats2d]]): The transformer listener.
    feature_width (int): Width of the hashed feature block; 0 disables the features.
    feature_attrs (List[str]): Token attributes to embed (SHAPE and PREFIX carry the case).
    feature_rows (List[int]): Rows of each hash table, one per attribute.
    include_static_vectors (bool): Also project the static vectors to ``feature_width`` and add them
        to the feature block (with ``feature_attrs = []`` the block is the vectors alone).
    RETURNS (Model[List[Doc], List[Floats2d]]): One array per doc.
    """
    if feature_width < 0:
        raise ValueError(f"feature_width must be >= 0, got {feature_width}")
    if feature_width == 0:
        if include_static_vectors:
            raise ValueError("include_static_vectors needs feature_width > 0 (the width the vectors are projected to)")
        return tok2vec
    if len(feature_rows) != len(feature_attrs):
        raise ValueError(
            f"One row count per feature attribute is needed: {len(feature_attrs)} attrs, {len(feature_rows)} rows"
        )
    if feature_attrs:
        features = MultiHashEmbed(
            width=feature_width, attrs=feature_attrs, rows=feature_rows, include_static_vectors=include_static_vectors
        )
    elif include_static_vectors:
        features = chain(StaticVectors(nO=feature_width, dropout=0.0), ragged2list())
    else:
        raise ValueError("feature_width > 0 needs feature_attrs or include_static_vectors")
    model = concatenate(tok2vec, features)
    model.set_ref("transformer", tok2vec)
    model.set_ref("features", features)
    return model


@registry.callbacks("spacy-compact-ner.require_local_encoder.v1")
def require_local_encoder(*, path: Optional[str], vectors: Optional[str] = None) -> Callable[[Language], Language]:
    """An ``[initialize.before_init]`` check that the teacher encoder is a local folder (and that
    ``vectors``, the ``[initialize] vectors`` path, exists if it is set).

    spacy-transformers treats a missing path as a model hub name; this fails first, with the path.
    """
    from .vectors import check_vectors_path

    def check(nlp: Language) -> Language:
        check_vectors_path(vectors)
        if not path:
            raise ValueError("No teacher encoder given: set --paths.teacher_encoder to a local model folder")
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"Teacher encoder folder not found or incomplete (no config.json): {folder.resolve()}. "
                "Fetch it with `python -m spacy_compact_ner assets` (nothing is loaded from a model hub)."
            )
        return nlp

    return check
