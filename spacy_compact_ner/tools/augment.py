"""Augmented copies of the in-domain sentences, to grow the transfer set where raw text is scarce.

Three operations of Dai & Adel (2020), "An Analysis of Simple Data Augmentation for Named Entity
Recognition", each copy made by one of them:

- ``mention``: every gold mention, with probability ``p``, swapped for another gold mention of the same
  type (from the labeled docs' own mentions);
- ``synonym``: every non-entity token, with probability ``p``, replaced by one of its nearest
  neighbours (cosine) in a static vectors table (the `spacy_compact_ner vectors` folder);
- ``shuffle``: the tokens of each segment (a gold mention, or a run of tokens outside mentions)
  shuffled with probability ``p``.

A copy is an unlabeled doc: it joins the transfer set through the teacher (`annotate`), which gives it
distributions and pseudo-labels; gold tags stay only on the unchanged originals. Unlabeled sources have
no mentions to keep whole, so they get ``synonym`` copies only. Copies that come out unchanged are
dropped. Everything is deterministic by seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.vocab import Vocab

OPERATIONS = ("mention", "synonym", "shuffle")
Words = List[str]
Segment = Tuple[int, int, Optional[str]]  # start, end, label (None: outside mentions)


@dataclass
class AugmentStats:
    """What `augment_docs` made: copies per operation and the sources they came from."""

    sources: int = 0
    labeled_sources: int = 0
    copies: int = 0
    unchanged_dropped: int = 0
    by_operation: Dict[str, int] = field(default_factory=lambda: {op: 0 for op in OPERATIONS})


class Neighbours:
    """The nearest words of a word in a static vectors table (cosine), lower-cased, cached per word."""

    def __init__(self, vocab: Vocab, k: int = 10) -> None:
        vectors = vocab.vectors
        if vectors.shape[0] == 0:
            raise ValueError("the vectors table is empty: no neighbours for synonym replacement")
        table = numpy.asarray(vectors.data, dtype="float32")
        norms = numpy.linalg.norm(table, axis=1, keepdims=True)
        self.table = table / numpy.maximum(norms, 1e-8)
        self.vectors, self.strings, self.k = vectors, vocab.strings, k
        # one word per row (the lower-case key where the row has one), for the neighbours' text
        row_word: Dict[int, str] = {}
        for key, row in vectors.key2row.items():
            if key not in self.strings:
                continue
            text = self.strings[key]
            if row not in row_word or (text.islower() and not row_word[row].islower()):
                row_word[row] = text
        self.row_word = row_word
        self._cache: Dict[str, Tuple[str, ...]] = {}

    def __call__(self, word: str) -> Tuple[str, ...]:
        lower = word.lower()
        if lower not in self._cache:
            key = self.strings[lower] if lower in self.strings else None
            row = self.vectors.key2row.get(key) if key is not None else None
            if row is None or not word.isalpha():
                self._cache[lower] = ()
            else:
                scores = self.table @ self.table[row]
                best = numpy.argsort(-scores)[: self.k + 1]
                found = [self.row_word.get(int(r)) for r in best if int(r) != row]
                self._cache[lower] = tuple(w for w in found if w and w.lower() != lower and w.isalpha())[: self.k]
        found = self._cache[lower]
        if word[:1].isupper():
            return tuple(w[:1].upper() + w[1:] for w in found)
        return found


def segments(doc: Doc) -> List[Segment]:
    """The doc as consecutive segments: each gold mention, and each run of tokens between them."""
    result: List[Segment] = []
    i = 0
    for ent in doc.ents:
        if ent.start > i:
            result.append((i, ent.start, None))
        result.append((ent.start, ent.end, ent.label_))
        i = ent.end
    if i < len(doc):
        result.append((i, len(doc), None))
    return result


def mention_pool(docs: Iterable[Doc]) -> Dict[str, List[Tuple[str, ...]]]:
    """The distinct gold mentions per label (as token tuples, sorted: deterministic)."""
    pool: Dict[str, set] = {}
    for doc in docs:
        for ent in doc.ents:
            pool.setdefault(ent.label_, set()).add(tuple(t.text for t in ent))
    return {label: sorted(mentions) for label, mentions in sorted(pool.items())}


def replace_mentions(
    doc: Doc, pool: Dict[str, List[Tuple[str, ...]]], rng: random.Random, p: float
) -> Tuple[Words, List[bool]]:
    words: Words = []
    spaces: List[bool] = []
    for start, end, label in segments(doc):
        span = doc[start:end]
        choices = pool.get(label or "", []) if label else []
        if label and len(choices) > 1 and rng.random() < p:
            new = list(rng.choice(choices))
            words += new
            spaces += [True] * (len(new) - 1) + [bool(span[-1].whitespace_)]
        else:
            words += [t.text for t in span]
            spaces += [bool(t.whitespace_) for t in span]
    return words, spaces


def replace_tokens(
    doc: Doc, neighbours: Callable[[str], Sequence[str]], rng: random.Random, p: float, *, labeled: bool
) -> Tuple[Words, List[bool]]:
    inside = {i for ent in doc.ents for i in range(ent.start, ent.end)} if labeled else set()
    words = [t.text for t in doc]
    for i, token in enumerate(doc):
        if i not in inside and rng.random() < p:
            options = neighbours(token.text)
            if options:
                words[i] = rng.choice(list(options))
    return words, [bool(t.whitespace_) for t in doc]


def shuffle_segments(doc: Doc, rng: random.Random, p: float) -> Tuple[Words, List[bool]]:
    words = [t.text for t in doc]
    for start, end, _ in segments(doc):
        if end - start > 1 and rng.random() < p:
            part = words[start:end]
            rng.shuffle(part)
            words[start:end] = part
    return words, [bool(t.whitespace_) for t in doc]


def augment_docs(
    labeled: Sequence[Doc],
    unlabeled: Sequence[Doc],
    vocab: Vocab,
    *,
    factor: int,
    seed: int = 0,
    p: float = 0.3,
    operations: Sequence[str] = OPERATIONS,
    neighbours: Optional[Callable[[str], Sequence[str]]] = None,
    stats: Optional[AugmentStats] = None,
) -> Iterator[Doc]:
    """``factor`` augmented copies of every doc (labeled first, then unlabeled), as unlabeled docs.

    Each copy applies one operation drawn from those that can change the doc (``synonym`` needs
    ``neighbours``; unlabeled docs get ``synonym`` only); a copy equal to its source is dropped.
    """
    unknown = sorted(set(operations) - set(OPERATIONS))
    if unknown:
        raise ValueError(f"unknown augmentation operation(s) {unknown}; choose from {', '.join(OPERATIONS)}")
    if factor < 0 or not 0.0 < p <= 1.0:
        raise ValueError(f"factor must be >= 0 and p in (0, 1], got factor {factor}, p {p}")
    if factor and "synonym" in operations and neighbours is None and unlabeled:
        raise ValueError("synonym replacement needs a vectors table (neighbours)")
    stats = stats if stats is not None else AugmentStats()
    pool = mention_pool(labeled)
    rng = random.Random(seed)
    sources = [(doc, True) for doc in labeled] + [(doc, False) for doc in unlabeled]
    for doc, is_labeled in sources:
        stats.sources += 1
        stats.labeled_sources += int(is_labeled)
        allowed = [op for op in operations if (is_labeled or op == "synonym")]
        if neighbours is None:
            allowed = [op for op in allowed if op != "synonym"]
        if is_labeled and not doc.ents:
            allowed = [op for op in allowed if op != "mention"]
        original = [t.text for t in doc]
        for _ in range(factor):
            if not allowed:
                break
            op = rng.choice(allowed)
            if op == "mention":
                words, spaces = replace_mentions(doc, pool, rng, p)
            elif op == "synonym":
                assert neighbours is not None
                words, spaces = replace_tokens(doc, neighbours, rng, p, labeled=is_labeled)
            else:
                words, spaces = shuffle_segments(doc, rng, p)
            if words == original:
                stats.unchanged_dropped += 1
                continue
            stats.copies += 1
            stats.by_operation[op] += 1
            yield Doc(vocab, words=words, spaces=spaces)


def augment_corpus(
    labeled_path: Path,
    unlabeled_path: Optional[Path],
    output: Path,
    *,
    factor: int,
    seed: int = 0,
    p: float = 0.3,
    operations: Sequence[str] = OPERATIONS,
    vectors: Optional[Path] = None,
) -> AugmentStats:
    """Write the augmented copies of ``labeled_path`` (and ``unlabeled_path``) to ``output`` (.spacy).
    ``factor`` 0 writes an empty file, so a workflow can always pass it to `annotate`."""
    import spacy

    from .corpus import read_docbin, write_docbin

    wants_synonyms = factor > 0 and "synonym" in operations
    if wants_synonyms and vectors is None:
        raise ValueError("synonym replacement needs --vectors (a `spacy_compact_ner vectors` folder)")
    nlp = spacy.load(vectors) if wants_synonyms else spacy.blank("en")
    labeled = read_docbin(labeled_path, nlp.vocab)
    unlabeled = read_docbin(unlabeled_path, nlp.vocab) if unlabeled_path is not None else []
    neighbours = Neighbours(nlp.vocab) if wants_synonyms else None
    stats = AugmentStats()
    docs = augment_docs(
        labeled,
        unlabeled,
        nlp.vocab,
        factor=factor,
        seed=seed,
        p=p,
        operations=operations,
        neighbours=neighbours,
        stats=stats,
    )
    write_docbin(docs, output)
    return stats
