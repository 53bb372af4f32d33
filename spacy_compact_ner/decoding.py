"""BILUO tag sets and constrained Viterbi decoding.

Tags are laid out as ``["O", "B-L0", "I-L0", "L-L0", "U-L0", "B-L1", ...]`` so that for a label
index ``k`` the tag indices are ``1 + 4k + {0: B, 1: I, 2: L, 3: U}``. The decoder only ever
emits valid BILUO sequences: a sequence starts and ends outside an entity, ``B-X``/``I-X`` are
followed by ``I-X``/``L-X``, and ``O``/``L-*``/``U-*`` are followed by ``O``/``B-*``/``U-*``.
"""

from types import ModuleType
from typing import Any, List, Optional, Sequence, Tuple

import numpy
from thinc.util import get_array_module, to_numpy

PREFIXES = ("B", "I", "L", "U")
_B, _I, _L, _U = 0, 1, 2, 3


def biluo_tags(labels: Sequence[str]) -> List[str]:
    """The tag names of an entity label set, in the order the model scores them."""
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in PREFIXES]


def labels_from_tags(tags: Sequence[str]) -> List[str]:
    """Invert ``biluo_tags``; raise ValueError if ``tags`` is not such a tag list."""
    if len(tags) == 0 or tags[0] != "O" or (len(tags) - 1) % 4:
        raise ValueError(f"Not a BILUO tag list: {list(tags)[:9]}...")
    labels = [tag[2:] for tag in tags[1::4]]
    if list(tags) != biluo_tags(labels):
        raise ValueError(f"Not a BILUO tag list in B, I, L, U order: {list(tags)[:9]}...")
    return labels


def array_module(array: Any, xp: Optional[ModuleType] = None) -> ModuleType:
    """``xp`` if given, else the array's own module (numpy or cupy), so that math on model outputs
    stays on their device."""
    if xp is not None:
        return xp
    try:
        return get_array_module(array)
    except ValueError:  # a list or another array type: computed with numpy
        return numpy


def log_softmax(scores: Any, *, xp: Optional[ModuleType] = None) -> Any:
    """Log-softmax over the last axis, on ``xp`` (by default the module of ``scores``)."""
    xp = array_module(scores, xp)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(scores: Any, temperature: float = 1.0, *, xp: Optional[ModuleType] = None) -> Any:
    """Softmax of ``scores / temperature`` over the last axis, on ``xp`` (by default the module of
    ``scores``)."""
    xp = array_module(scores, xp)
    shifted = scores / temperature
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exp = xp.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def viterbi_batch(scores: Sequence[numpy.ndarray]) -> List[numpy.ndarray]:
    """Best valid BILUO tag indices for each ``(n_tokens, n_tags)`` score array.

    Scores are added along the path, so pass log-probabilities. All docs are decoded together on the
    CPU (``viterbi_ragged``); GPU (cupy) arrays are copied to numpy first.
    """
    scores = [numpy.asarray(to_numpy(s), dtype="float32") for s in scores]
    if not scores:
        return []
    n_tags = {s.shape[1] for s in scores if s.ndim == 2}
    if len(n_tags) != 1 or any(s.ndim != 2 for s in scores):
        raise ValueError(f"Expected (n_tokens, n_tags) arrays with one n_tags, got shapes {[s.shape for s in scores]}")
    lengths = numpy.asarray([len(s) for s in scores], dtype="int64")
    paths = viterbi_ragged(numpy.concatenate(scores), lengths)
    return numpy.split(paths, numpy.cumsum(lengths)[:-1])


def viterbi(scores: numpy.ndarray) -> numpy.ndarray:
    """Best valid BILUO tag indices for one ``(n_tokens, n_tags)`` score array."""
    return viterbi_batch([scores])[0]


def viterbi_ragged(scores: numpy.ndarray, lengths: Sequence[int]) -> numpy.ndarray:
    """Best valid BILUO tag indices of docs whose ``(n_tokens, n_tags)`` scores are concatenated
    (``lengths`` tokens each), as one concatenated int32 array.

    One padded Viterbi over the whole batch: docs are sorted longest first, so step ``t`` updates only
    the leading docs that are longer than ``t`` (no padded work), and a doc's final scores stay in
    place once it ends. The path scores are held tag-major (``delta[t, tag, doc]``), with the tags
    permuted to ``B-*, O, U-*, L-*, I-*``, so that every step is two maxima and two additions over
    contiguous row blocks: ``B-*``, ``O`` and ``U-*`` follow the best of ``O, U-*, L-*`` (outside an
    entity), ``L-x`` and ``I-x`` the better of ``B-x`` and ``I-x``. The back-pointers are then found
    for all tokens at once, and the paths traced back one step at a time. Ties resolve as in a plain
    argmax over ``O, L-*, U-*`` (first best) and ``B-x`` before ``I-x``.
    """
    scores = numpy.asarray(scores, dtype="float32")
    lengths = numpy.asarray(lengths, dtype="int64")
    n_tokens, n_tags = scores.shape
    if (n_tags - 1) % 4:
        raise ValueError(f"Expected 4 * n_labels + 1 tag scores, got {n_tags}")
    if lengths.sum() != n_tokens or (lengths < 0).any():
        raise ValueError(f"lengths {lengths.tolist()[:8]}... do not add up to the {n_tokens} score rows")
    if n_tokens == 0:
        return numpy.zeros((0,), dtype="int32")
    n = (n_tags - 1) // 4
    labels = numpy.arange(n)
    # Permuted row p holds original tag perm[p]: B-*, O, U-*, L-*, I-*.
    perm = numpy.concatenate([1 + 4 * labels + _B, [0], 1 + 4 * labels + _U, 1 + 4 * labels + _L, 1 + 4 * labels + _I])
    o, l_lo, i_lo = n, 1 + 2 * n, 1 + 3 * n
    out_rows = numpy.concatenate([[o], l_lo + labels, o + 1 + labels])  # O, L-*, U-*: the tie order
    order = numpy.argsort(-lengths, kind="stable")  # rank -> doc, longest first
    rank = numpy.empty_like(order)
    rank[order] = numpy.arange(len(order))
    n_docs = int((lengths > 0).sum())
    max_len = int(lengths.max())
    # active[t]: how many (leading, sorted) docs are longer than t.
    active = (len(lengths) - numpy.cumsum(numpy.bincount(lengths, minlength=max_len + 1))[:max_len]).tolist()
    starts = numpy.cumsum(lengths) - lengths
    token_rank = numpy.repeat(rank, lengths)
    token_pos = numpy.arange(n_tokens) - numpy.repeat(starts, lengths)
    delta = numpy.zeros((max_len, n_tags, n_docs), dtype="float32")
    delta[token_pos, :, token_rank] = scores[:, perm]
    delta[0, l_lo:] = -numpy.inf  # a doc cannot start with L-* or I-*
    inside = delta[:, l_lo:].reshape(max_len, 2, n, n_docs)  # a view: L-* and I-* of each label
    for t in range(1, max_len):
        c = active[t]
        prev = delta[t - 1, :, :c]
        delta[t, :l_lo, :c] += numpy.maximum.reduce(prev[o:i_lo], axis=0)
        inside[t, :, :, :c] += numpy.maximum(prev[:n], prev[i_lo:])
    # back[i, tag]: the tag of token i - 1 on the best path through tag at token i (not a doc's first).
    follows = numpy.flatnonzero(token_pos)
    before = delta.transpose(0, 2, 1)[token_pos[follows] - 1, token_rank[follows]]
    back = numpy.empty((n_tokens, n_tags), dtype=numpy.min_scalar_type(n_tags))
    back[follows, :l_lo] = out_rows[before[:, out_rows].argmax(axis=1)][:, None]
    from_inside = (before[:, i_lo:] > before[:, :n]).astype(back.dtype) * back.dtype.type(i_lo)
    from_inside += labels.astype(back.dtype)
    back[follows, l_lo:] = numpy.tile(from_inside, 2)
    # Every doc ends outside an entity: its best O, L-* or U-* after its last token.
    ranks = numpy.arange(n_docs)
    first = starts[order[:n_docs]]  # the first token of the doc of each rank
    last = delta.transpose(0, 2, 1)[lengths[order[:n_docs]] - 1, ranks]
    current = out_rows[last[:, out_rows].argmax(axis=1)]
    paths = numpy.empty((n_tokens,), dtype=back.dtype)
    for t in range(max_len - 1, 0, -1):
        c = active[t]
        tokens = first[:c] + t
        tags = current[:c]
        paths[tokens] = tags
        current[:c] = back[tokens, tags]
    paths[first] = current
    return perm[paths].astype("int32")


def ragged_spans(tag_ids: numpy.ndarray, lengths: Sequence[int]) -> Tuple[numpy.ndarray, ...]:
    """The entity spans of concatenated valid BILUO index sequences (``viterbi_ragged``'s output).

    RETURNS (Tuple[Ints1d, ...]): For every span, in order: its doc's index, its start and end in the
    concatenated tokens (end exclusive), and its label index.
    """
    tag_ids = numpy.asarray(tag_ids)
    prefix = (tag_ids - 1) % 4
    entity = tag_ids > 0
    starts = numpy.flatnonzero(entity & ((prefix == _B) | (prefix == _U)))
    ends = numpy.flatnonzero(entity & ((prefix == _L) | (prefix == _U))) + 1
    if len(starts) != len(ends):
        raise ValueError("Not a valid BILUO sequence: entity starts and ends do not pair up")
    doc_ends = numpy.cumsum(numpy.asarray(lengths, dtype="int64"))
    docs = numpy.searchsorted(doc_ends, starts, side="right")
    return docs, starts, ends, (tag_ids[starts] - 1) // 4


def is_valid_biluo(tags: Sequence[str]) -> bool:
    """Whether a sequence of BILUO tag names is well formed."""
    inside: Optional[str] = None
    for tag in tags:
        prefix, _, label = tag.partition("-")
        if inside is None:
            if prefix in ("I", "L") or (prefix != "O" and prefix not in PREFIXES):
                return False
            if prefix == "B":
                inside = label
        else:
            if prefix not in ("I", "L") or label != inside:
                return False
            if prefix == "L":
                inside = None
    return inside is None


def tags_to_spans(tag_ids: Sequence[int], labels: Sequence[str]) -> List[Tuple[int, int, str]]:
    """``(start, end, label)`` token spans of a valid BILUO index sequence."""
    spans = []
    start = 0
    for position, tag in enumerate(tag_ids):
        if tag == 0:
            continue
        label_idx, prefix = divmod(int(tag) - 1, 4)
        if prefix == _B:
            start = position
        elif prefix == _L:
            spans.append((start, position + 1, labels[label_idx]))
        elif prefix == _U:
            spans.append((position, position + 1, labels[label_idx]))
    return spans
