"""Windows of a doc for the transformer teacher, bounded in tokens *and* characters.

spacy-transformers' strided getter cuts windows by spaCy tokens; a window of URL-like tokens can
then exceed the encoder's 512 wordpieces and be silently truncated. Every wordpiece covers at least
one character of the text, so a window of at most ``max_chars`` characters stays within
``max_chars + 2`` positions ([CLS] and [SEP]) for WordPiece encoders.

This module needs spacy-transformers (the ``teacher`` extra); the student never imports it.
"""

from bisect import bisect_right
from functools import partial
from typing import Callable, Iterable, List

from spacy.tokens import Doc, Span
from spacy_transformers.util import registry  # creates registry.span_getters (teacher extra)

SpanGetter = Callable[[Iterable[Doc]], List[List[Span]]]


@registry.span_getters("spacy-compact-ner.bounded_strided_spans.v1")
def configure_bounded_strided_spans(*, window: int = 128, stride: int = 96, max_chars: int = 500) -> SpanGetter:
    """Overlapping windows of at most ``window`` tokens and ``max_chars`` characters.

    window (int): Tokens per window.
    stride (int): Tokens between window starts (< window for overlap); scaled down with the window
        when the character bound shortens it.
    max_chars (int): Characters per window (a single longer token still forms its own window).
    """
    if window < 1 or not 0 < stride <= window:
        raise ValueError(f"Span getter needs window >= 1 and 0 < stride <= window, got {window}, {stride}")
    if max_chars < 1:
        raise ValueError(f"Span getter max_chars must be >= 1, got {max_chars}")
    return partial(get_bounded_strided_spans, window=window, stride=stride, max_chars=max_chars)


def get_bounded_strided_spans(docs: Iterable[Doc], *, window: int, stride: int, max_chars: int) -> List[List[Span]]:
    return [_doc_windows(doc, window, stride, max_chars) for doc in docs]


def _doc_windows(doc: Doc, window: int, stride: int, max_chars: int) -> List[Span]:
    n = len(doc)
    starts = [token.idx for token in doc]
    ends = [token.idx + len(token) for token in doc]
    spans = []
    start = 0
    while start < n:
        by_chars = bisect_right(ends, starts[start] + max_chars)
        end = max(start + 1, min(n, start + window, by_chars))
        spans.append(doc[start:end])
        if end == n:
            break
        start += max(1, (end - start) * stride // window)
    return spans
