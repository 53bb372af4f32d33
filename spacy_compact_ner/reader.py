"""The corpus reader for student training: a DocBin whose docs may carry gold entities and/or
stored teacher distributions. Predicted docs keep the reference tokens, so teacher rows line up."""

from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .decoding import labels_from_tags
from .store import get_teacher_logits, read_docbin


@registry.readers("spacy-compact-ner.DistillCorpus.v1")
def create_distill_corpus_reader(
    path: Optional[Union[str, Path]], *, max_length: int = 0, limit: int = 0, gold_repeat: int = 1
) -> Callable[[Language], Iterator[Example]]:
    """Read annotated docs (a ``.spacy`` file or a directory of them) as training examples.

    path (Optional[Path]): File or directory; None yields nothing (e.g. an unused dev corpus).
    max_length (int): Skip docs longer than this many tokens (0: no limit).
    limit (int): Read at most this many docs (0: all).
    gold_repeat (int): Yield each doc with gold entities this many times per pass (1: once), so that a few
        labeled docs among many teacher-annotated ones are seen as often as in a smaller transfer set.
    """
    if isinstance(gold_repeat, bool) or not isinstance(gold_repeat, int) or gold_repeat < 1:
        raise ValueError(f"DistillCorpus: gold_repeat must be an integer >= 1, got {gold_repeat!r}")
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
            copies = gold_repeat if gold_repeat > 1 and doc.has_annotation("ENT_IOB") else 1
            for _ in range(copies):
                predicted = Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
                yield Example(predicted, doc)

    return read


def load_annotated_docs(path: Path, nlp: Language, *, limit: int = 0) -> List[Doc]:
    """Load and check docs; a stored distribution that does not fit its doc, or whose labels differ
    from those of the other docs, is an error naming the file and the doc. No docs at all is an error."""
    if not path.exists():
        raise FileNotFoundError(f"Distillation corpus not found: {path}")
    files = sorted(path.glob("**/*.spacy")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"No .spacy files in {path}")
    docs: List[Doc] = []
    first_labels: Optional[Tuple[str, List[str]]] = None  # (where, labels) of the first teacher distributions
    for file in files:
        doc_bin = read_docbin(file)
        try:
            file_docs = list(doc_bin.get_docs(nlp.vocab))
        except Exception as err:
            raise ValueError(f"{file} is not a readable spaCy DocBin (truncated or another format?): {err}") from err
        for i, doc in enumerate(file_docs):
            try:
                stored = get_teacher_logits(doc)
                labels = labels_from_tags(stored[1]) if stored is not None else None
            except ValueError as err:
                raise ValueError(f"{file}, doc {i}: {err}") from err
            if labels is not None:
                if first_labels is None:
                    first_labels = (f"{file}, doc {i}", labels)
                elif set(labels) != set(first_labels[1]):
                    raise ValueError(
                        f"{file}, doc {i}: teacher distributions over labels {sorted(labels)}, but "
                        f"{first_labels[0]} has labels {sorted(first_labels[1])}: "
                        "annotate every doc with the same teacher"
                    )
            docs.append(doc)
            if limit and len(docs) >= limit:
                return docs
    if not docs:
        raise ValueError(f"No docs in {path}: the distillation corpus is empty")
    return docs
