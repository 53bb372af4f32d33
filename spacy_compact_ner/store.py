"""Teacher distributions stored with each doc (``doc.user_data``), so student training needs no
transformer. Logits are kept as float16: about 3 significant digits, enough for any temperature."""

from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

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


def read_docbin(file: Path) -> DocBin:
    """Load a ``.spacy`` file (user data kept); a ValueError names the file if it is empty, truncated
    or not a DocBin at all."""
    file = Path(file)
    if file.stat().st_size == 0:
        raise ValueError(f"{file} is empty (0 bytes): not a spaCy DocBin")
    try:
        return DocBin(store_user_data=True).from_disk(file)
    except Exception as err:  # srsly/msgpack/zlib raise many kinds on a corrupt file
        raise ValueError(f"{file} is not a readable spaCy DocBin (truncated or another format?): {err}") from err


def iter_docbin_docs(file: Path, vocab: Vocab) -> Iterator[Doc]:
    """The docs of a ``.spacy`` file, lazily; a doc that cannot be rebuilt is a ValueError naming it."""
    docs = read_docbin(file).get_docs(vocab)
    i = 0
    while True:
        try:
            doc = next(docs)
        except StopIteration:
            return
        except Exception as err:
            raise ValueError(f"{file}, doc {i}: cannot be rebuilt from the DocBin (corrupt file?): {err}") from err
        yield doc
        i += 1
