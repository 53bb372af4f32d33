"""The corpus reader for student training: a DocBin whose docs may carry gold entities and/or
stored teacher distributions. Predicted docs keep the reference tokens, so teacher rows line up."""
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import registry

from .store import get_teacher_logits


@registry.readers("spacy-compact-ner.DistillCorpus.v1")
def create_distill_corpus_reader(
    path: Optional[Union[str, Path]], *, max_length: int = 0, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Read annotated docs (a ``.spacy`` file or a directory of them) as training examples.

    path (Optional[Path]): File or directory; None yields nothing (e.g. an unused dev corpus).
    max_length (int): Skip docs longer than this many tokens (0: no limit).
    limit (int): Read at most this many docs (0: all).
    """
    docs: Optional[List[Doc]] = None

    def read(nlp: Language) -> Iterator[Example]:
        nonlocal docs
        if path is None:
            return
        if docs is None:
            docs = load_annotated_docs(Path(path), nlp, limit=limit)
        for doc in docs:
            if max_length and len(doc) > max_length:
                continue
            predicted = Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
            yield Example(predicted, doc)

    return read


def load_annotated_docs(path: Path, nlp: Language, *, limit: int = 0) -> List[Doc]:
    """Load and check docs; a stored distribution that does not fit its doc is an error naming it."""
    if not path.exists():
        raise FileNotFoundError(f"Distillation corpus not found: {path}")
    files = sorted(path.glob("**/*.spacy")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"No .spacy files in {path}")
    docs: List[Doc] = []
    for file in files:
        try:
            doc_bin = DocBin(store_user_data=True).from_disk(file)
            file_docs = list(doc_bin.get_docs(nlp.vocab))
        except Exception as err:  # srsly/msgpack/zlib raise many kinds on a corrupt file
            raise ValueError(f"{file} is not a readable spaCy DocBin (truncated or another format?): {err}") from err
        for i, doc in enumerate(file_docs):
            try:
                get_teacher_logits(doc)
            except ValueError as err:
                raise ValueError(f"{file}, doc {i}: {err}") from err
            docs.append(doc)
            if limit and len(docs) >= limit:
                return docs
    return docs
