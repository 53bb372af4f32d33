"""BILUO tag sets and constrained Viterbi decoding.

Tags are laid out as ``["O", "B-L0", "I-L0", "L-L0", "U-L0", "B-L1", ...]`` so that for a label
index ``k`` the tag indices are ``1 + 4k + {0: B, 1: I, 2: L, 3: U}``. The decoder only ever
emits valid BILUO sequences: a sequence starts and ends outside an entity, ``B-X``/``I-X`` are
followed by ``I-X``/``L-X``, and ``O``/``L-*``/``U-*`` are followed by ``O``/``B-*``/``U-*``.
"""

from types import ModuleType
from typing import Any, Iterable, List, Optional, Sequence, Tuple

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

    Scores are added along the path, so pass log-probabilities. Docs are decoded together on the
    CPU, grouped by length so that padding stays small; GPU (cupy) arrays are copied to numpy first.
    """
    scores = [to_numpy(s) for s in scores]
    results: List[Optional[numpy.ndarray]] = [None] * len(scores)
    for group in _length_groups([len(s) for s in scores]):
        decoded = _viterbi_padded([scores[i] for i in group])
        for i, tags in zip(group, decoded):
            results[i] = tags
    return results  # type: ignore[return-value]


def viterbi(scores: numpy.ndarray) -> numpy.ndarray:
    """Best valid BILUO tag indices for one ``(n_tokens, n_tags)`` score array."""
    return viterbi_batch([scores])[0]


def _length_groups(lengths: Sequence[int], slack: float = 1.3) -> Iterable[List[int]]:
    """Group doc indices of similar length: padded size stays within ``slack`` of the real one."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    group: List[int] = []
    total = 0
    for i in order:
        n = lengths[i]
        if group and (len(group) + 1) * n > slack * (total + n) + 64:
            yield group
            group, total = [], 0
        group.append(i)
        total += n
    if group:
        yield group


def _viterbi_padded(scores: Sequence[numpy.ndarray]) -> List[numpy.ndarray]:
    n_docs = len(scores)
    n_tags = scores[0].shape[1]
    if (n_tags - 1) % 4:
        raise ValueError(f"Expected 4 * n_labels + 1 tag scores, got {n_tags}")
    n_labels = (n_tags - 1) // 4
    max_len = max(len(s) for s in scores)
    if max_len == 0:
        return [numpy.zeros((0,), dtype="int32") for _ in scores]
    # One extra padded step that only allows O: this forces every path to end outside an entity.
    emissions = numpy.full((max_len + 1, n_docs, n_tags), -numpy.inf, dtype="float32")
    emissions[:, :, 0] = 0.0
    for d, s in enumerate(scores):
        emissions[: len(s), d] = s
    label_idx = numpy.arange(n_labels)
    b_cols = 1 + 4 * label_idx + _B
    i_cols = 1 + 4 * label_idx + _I
    outside_cols = numpy.concatenate([[0], 1 + 4 * label_idx + _L, 1 + 4 * label_idx + _U])
    start_cols = numpy.concatenate([[0], b_cols, 1 + 4 * label_idx + _U])  # O, B-*, U-*
    cont_cols = numpy.concatenate([i_cols, 1 + 4 * label_idx + _L])  # I-*, L-*

    backptr = numpy.zeros((max_len + 1, n_docs, n_tags), dtype="int32")
    delta = numpy.full((n_docs, n_tags), -numpy.inf, dtype="float32")
    delta[:, start_cols] = emissions[0][:, start_cols]
    rows = numpy.arange(n_docs)
    for t in range(1, max_len + 1):
        # Best way to be outside an entity after step t-1 (O, L-*, U-*).
        out_arg = outside_cols[delta[:, outside_cols].argmax(axis=1)]
        out_best = delta[rows, out_arg]
        # Per label: best way to be inside (B-x or I-x) after step t-1.
        b_scores = delta[:, b_cols]
        i_scores = delta[:, i_cols]
        use_i = i_scores > b_scores
        in_best = numpy.where(use_i, i_scores, b_scores)
        in_arg = numpy.where(use_i, i_cols[None, :], b_cols[None, :])
        new = numpy.full_like(delta, -numpy.inf)
        new[:, start_cols] = out_best[:, None] + emissions[t][:, start_cols]
        backptr[t][:, start_cols] = out_arg[:, None]
        in_both = numpy.concatenate([in_best, in_best], axis=1)
        new[:, cont_cols] = in_both + emissions[t][:, cont_cols]
        backptr[t][:, cont_cols] = numpy.concatenate([in_arg, in_arg], axis=1)
        delta = new
    # The padded final step is O for every doc; walk back from there.
    paths = numpy.zeros((max_len + 1, n_docs), dtype="int32")
    current = numpy.zeros((n_docs,), dtype="int32")
    paths[max_len] = current
    for t in range(max_len, 0, -1):
        current = backptr[t, rows, current]
        paths[t - 1] = current
    results = []
    for d, s in enumerate(scores):
        # Positions past a doc's end allow only O, so its real path ends outside an entity.
        results.append(paths[: len(s), d].copy())
    return results


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
