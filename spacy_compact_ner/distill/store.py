"""Teacher distributions stored with each doc (``doc.user_data``), so student training needs no
transformer. Logits are kept as float16: about 3 significant digits, enough for any temperature."""
from typing import List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc

TEACHER_KEY = "compact_ner_teacher"


def set_teacher_logits(doc: Doc, logits: numpy.ndarray, tags: Sequence[str]) -> None:
    """Attach ``(len(doc), len(tags))`` teacher logits to ``doc``."""
    logits = numpy.asarray(logits)
    if logits.shape != (len(doc), len(tags)):
        raise ValueError(
            f"Teacher logits of shape {logits.shape} do not fit doc {_doc_name(doc)} "
            f"({len(doc)} tokens, {len(tags)} tags)"
        )
    doc.user_data[TEACHER_KEY] = {
        "tags": list(tags),
        "logits": numpy.ascontiguousarray(logits, dtype="<f2").tobytes(),
    }


def get_teacher_logits(doc: Doc) -> Optional[Tuple[numpy.ndarray, List[str]]]:
    """The teacher logits (float32) and tag names stored with ``doc``, or None.

    Raises ValueError, naming the doc, if the stored array does not match the doc's tokens.
    """
    stored = doc.user_data.get(TEACHER_KEY)
    if stored is None:
        return None
    try:
        tags = list(stored["tags"])
        flat = numpy.frombuffer(stored["logits"], dtype="<f2")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Malformed teacher distributions stored with doc {_doc_name(doc)}: {err}") from err
    if not tags or flat.size != len(doc) * len(tags):
        raise ValueError(
            f"Teacher distributions stored with doc {_doc_name(doc)} hold {flat.size} values, but the doc has "
            f"{len(doc)} tokens x {len(tags)} tags: the doc was re-tokenized or the file is corrupt"
        )
    return flat.reshape(len(doc), len(tags)).astype("float32"), tags


def _doc_name(doc: Doc) -> str:
    text = doc.text if len(doc.text) <= 60 else doc.text[:57] + "..."
    return repr(text)
