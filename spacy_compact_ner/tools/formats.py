"""Readers of a user's data: labeled docs from CoNLL/IOB columns, JSONL with character-offset spans or a
.spacy DocBin, and unlabeled text from .txt, .jsonl or .spacy files.

Every reader validates strictly and names the file and the line (or doc) of the first problem in a
`CorpusFormatError`, so that nothing is written from bad input. Labels come from the data: any label set,
any names.

- CoNLL / IOB columns (``.conll .iob .iob1 .iob2 .bio .biluo .bilou .bioes .tsv .txt``): one token a line,
  the token in the first column and the tag in the last (tab-separated, or whitespace-separated where a line
  has no tab), a blank line between sentences, ``-DOCSTART-`` lines (CoNLL-2003) skipped. Tag schemes IOB1,
  IOB2 and BILUO (or its alias BIOES), chosen by ``scheme`` or detected from the file.
- JSONL (``.jsonl``): one JSON object a line with ``"text"`` and character-offset ``"spans"``
  (``[{"start": 0, "end": 5, "label": "ORG"}]``, Prodigy's shape) or ``"entities"`` (``[[0, 5, "ORG"]]``);
  optional ``"tokens"`` (Prodigy's ``[{"text": ..., "ws": ...}]``) fix the tokenization. Spans off token
  boundaries follow ``alignment_mode``: ``strict`` refuses them, ``contract`` / ``expand`` snap them to
  tokens (as `Doc.char_span` does) and counts them.
- ``.spacy``: a DocBin with ``doc.ents``; tokens without entity annotation are taken as outside.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

Sentence = tuple[list[str], list[str]]
Format = Literal["auto", "conll", "jsonl", "spacy"]
Scheme = Literal["auto", "iob1", "iob2", "biluo"]
AlignmentMode = Literal["strict", "contract", "expand"]

FORMATS = ("auto", "conll", "jsonl", "spacy")
SCHEMES = ("auto", "iob1", "iob2", "biluo")
ALIGNMENT_MODES = ("strict", "contract", "expand")
CONLL_SUFFIXES = (".conll", ".iob", ".iob1", ".iob2", ".bio", ".biluo", ".bilou", ".bioes", ".tsv", ".txt")
TEXT_SUFFIXES = (".txt",)
DOCSTART = "-DOCSTART-"
_TAG_RE = re.compile(r"^(?:O|[BIELSU]-\S+)$")
_IOB2_RE = re.compile(r"^(?:O|[BI]-\S+)$")


class CorpusFormatError(ValueError):
    """A corpus file is malformed; the message names the file and the line, doc or byte offset."""


@dataclass
class ReadStats:
    """What a reader found besides the docs."""

    format: str
    scheme: str = ""
    # spans moved to token boundaries by alignment_mode contract / expand
    realigned_spans: int = 0
    # .spacy docs with tokens lacking entity annotation (taken as outside)
    docs_without_ent_annotation: int = 0
    notes: list[str] = field(default_factory=list)


def decode(path: Path, data: bytes) -> str:
    """UTF-8 (a BOM is dropped); undecodable bytes are an error naming the byte offset and line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorpusFormatError(
            f"{path}: not valid UTF-8 at byte offset {err.start} (line {line}): {err.reason}"
        ) from None


def detect_format(path: Path | str, format: str = "auto") -> str:
    """The format of a labeled file: ``format`` unless "auto", else from the file name's suffix."""
    path = Path(path)
    if format not in FORMATS:
        raise CorpusFormatError(f"{path}: unknown format {format!r} (choose from {', '.join(FORMATS)})")
    if format != "auto":
        return format
    suffix = path.suffix.lower()
    if suffix == ".spacy":
        return "spacy"
    if suffix == ".jsonl":
        return "jsonl"
    if suffix in CONLL_SUFFIXES:
        return "conll"
    raise CorpusFormatError(
        f"{path}: unknown format of {suffix or 'a file without suffix'!r}: use .spacy (DocBin), .jsonl (text and "
        f"character-offset spans) or CoNLL/IOB columns ({' '.join(CONLL_SUFFIXES)}), or say which with --format"
    )


# ---------------------------------------------------------------------------------------------
# CoNLL / IOB columns


def read_columns(
    path: Path | str,
    *,
    scheme: Scheme = "auto",
    labels: Iterable[str] | None = None,
    tab_columns: int | None = None,
) -> tuple[list[Sentence], str]:
    """Read token/tag columns into (words, IOB2 tags) sentences; RETURNS them and the scheme read.

    path (Path): The file (see the module docstring for the layout).
    scheme (str): "iob1", "iob2", "biluo" (B/I/L/U or B/I/E/S) or "auto" (BILUO if an L-/U-/E-/S- tag
        occurs, else IOB1 if an I- tag starts an entity, else IOB2).
    labels (Iterable[str] | None): If given, the only entity types allowed.
    tab_columns (int | None): If given, every line must have exactly this many tab-separated columns
        (the strict ``token<TAB>tag`` reading of `corpus.read_iob2`); ``-DOCSTART-`` is then a token.
    RAISES CorpusFormatError: On a malformed line or tag sequence (file and 1-based line), undecodable
        bytes, or a file without sentences.
    """
    path = Path(path)
    if scheme not in SCHEMES:
        raise CorpusFormatError(f"{path}: unknown tag scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    allowed = set(labels) if labels is not None else None
    raw_sentences: list[list[tuple[int, str, str]]] = []
    tokens: list[tuple[int, str, str]] = []
    for lineno, raw in enumerate(decode(path, path.read_bytes()).splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip() or (tab_columns is None and line.split()[0] == DOCSTART):
            if tokens:
                raw_sentences.append(tokens)
                tokens = []
            continue
        where = f"{path}:{lineno}"
        if tab_columns is not None:
            cols = [c.strip() for c in line.split("\t")]
            if len(cols) != tab_columns:
                raise CorpusFormatError(
                    f"{where}: expected {tab_columns} tab-separated columns (token, tag), found {len(cols)}: {raw!r}"
                )
        else:
            cols = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
            if len(cols) < 2:
                raise CorpusFormatError(f"{where}: expected a token and a tag (2 or more columns), found 1: {raw!r}")
        word, tag = cols[0], cols[-1]
        if not word:
            raise CorpusFormatError(f"{where}: empty token: {raw!r}")
        if scheme in ("iob1", "iob2") and not _IOB2_RE.match(tag):
            raise CorpusFormatError(f"{where}: invalid {scheme.upper()} tag {tag!r} (expected O, B-TYPE or I-TYPE)")
        if not _TAG_RE.match(tag):
            raise CorpusFormatError(f"{where}: invalid entity tag {tag!r} (expected O or B-/I-/L-/U-/E-/S-TYPE)")
        if allowed is not None and tag != "O" and tag[2:] not in allowed:
            raise CorpusFormatError(f"{where}: unknown label {tag[2:]!r} (allowed: {', '.join(sorted(allowed))})")
        tokens.append((lineno, word, tag))
    if tokens:
        raw_sentences.append(tokens)
    if not raw_sentences:
        raise CorpusFormatError(f"{path}: empty file (no sentences)")
    if scheme == "auto":
        scheme = _detect_scheme(raw_sentences)
    sentences = [_to_iob2(path, sent, scheme) for sent in raw_sentences]
    return sentences, scheme


def _detect_scheme(sentences: Sequence[Sequence[tuple[int, str, str]]]) -> Scheme:
    tags = [tag for sent in sentences for _, _, tag in sent]
    if any(tag[:2] in ("L-", "U-", "E-", "S-") for tag in tags):
        return "biluo"
    for sent in sentences:
        prev = "O"
        for _, _, tag in sent:
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                return "iob1"
            prev = tag
    return "iob2"


def _to_iob2(path: Path, sentence: Sequence[tuple[int, str, str]], scheme: str) -> Sentence:
    """Validate one sentence's tags in ``scheme`` and convert them to IOB2."""
    words = [word for _, word, _ in sentence]
    out: list[str] = []
    prev = "O"
    for i, (lineno, _, tag) in enumerate(sentence):
        where = f"{path}:{lineno}"
        kind, label = (tag[0], tag[2:]) if tag != "O" else ("O", "")
        if scheme == "biluo":
            kind = {"E": "L", "S": "U"}.get(kind, kind)
            inside = prev[:1] in ("B", "I") and prev[2:] == label
            if kind in ("I", "L") and not inside:
                raise CorpusFormatError(
                    f"{where}: {tag!r} follows {prev!r}: in BILUO an {kind}- tag continues a B-{label} or I-{label}"
                )
            if kind in ("B", "U", "O") and prev[:1] in ("B", "I"):
                raise CorpusFormatError(f"{where}: {tag!r} follows {prev!r}: in BILUO an entity ends with an L- tag")
            out.append("O" if kind == "O" else ("B-" if kind in ("B", "U") else "I-") + label)
            prev = f"{kind}-{label}" if kind != "O" else "O"
        elif scheme == "iob1":  # an I- tag may start an entity; a B- tag always does
            if kind not in ("O", "B", "I"):
                raise CorpusFormatError(f"{where}: invalid IOB1 tag {tag!r} (expected O, B-TYPE or I-TYPE)")
            starts = kind == "B" or (kind == "I" and prev[2:] != label)
            out.append("O" if kind == "O" else ("B-" if starts else "I-") + label)
            prev = tag
        else:
            if kind not in ("O", "B", "I"):
                raise CorpusFormatError(f"{where}: invalid IOB2 tag {tag!r} (expected O, B-TYPE or I-TYPE)")
            if kind == "I" and prev not in (f"B-{label}", f"I-{label}"):
                raise CorpusFormatError(
                    f"{where}: I- tag with no entity: {tag!r} follows {prev!r} "
                    f"(an I-{label} must continue a B-{label} or I-{label})"
                )
            out.append(tag)
            prev = tag
        if i == len(sentence) - 1 and scheme == "biluo" and prev[:1] in ("B", "I"):
            raise CorpusFormatError(
                f"{where}: the sentence ends inside an entity ({tag!r}): in BILUO an entity ends with an L- tag"
            )
    return words, out


def iob2_spans(doc: Doc, tags: Sequence[str]) -> list[Span]:
    """The entity spans of IOB2 tags over a doc's tokens."""
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
    doc.set_ents(iob2_spans(doc, tags), default="outside")
    return doc


# ---------------------------------------------------------------------------------------------
# JSONL with character-offset spans


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line; bad JSON or a non-object is an error."""
    for lineno, line in enumerate(decode(path, path.read_bytes()).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusFormatError(f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise CorpusFormatError(f"{path}:{lineno}: expected a JSON object, found {type(record).__name__}")
        yield lineno, record


def _record_text(where: str, record: dict) -> str:
    text = record.get("text")
    if not isinstance(text, str):
        raise CorpusFormatError(f'{where}: expected a string "text", found {type(text).__name__}')
    return text


def _record_doc(where: str, record: dict, text: str, nlp: Language) -> Doc:
    tokens = record.get("tokens")
    if tokens is None:
        return nlp.make_doc(text)
    if not isinstance(tokens, list) or not all(isinstance(t, dict) and isinstance(t.get("text"), str) for t in tokens):
        raise CorpusFormatError(f'{where}: "tokens" must be a list of objects with a "text"')
    words = [t["text"] for t in tokens]
    spaces = [bool(t.get("ws", True)) for t in tokens]
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    if doc.text != text:
        raise CorpusFormatError(f'{where}: the "tokens" (with their "ws") do not spell the "text"')
    return doc


def _record_spans(where: str, record: dict) -> list[tuple[int, int, str]]:
    if "spans" in record and "entities" in record:
        raise CorpusFormatError(f'{where}: give "spans" or "entities", not both')
    spans = []
    if "spans" in record:
        items = record["spans"] or []
        if not isinstance(items, list):
            raise CorpusFormatError(f'{where}: "spans" must be a list')
        for item in items:
            if not isinstance(item, dict) or not {"start", "end", "label"} <= set(item):
                raise CorpusFormatError(f'{where}: each span needs "start", "end" and "label": {item!r}')
            spans.append((item["start"], item["end"], item["label"]))
    else:
        items = record.get("entities") or []
        if not isinstance(items, list):
            raise CorpusFormatError(f'{where}: "entities" must be a list')
        for item in items:
            if not isinstance(item, (list, tuple)) or len(item) != 3:
                raise CorpusFormatError(f"{where}: each entity must be [start, end, label]: {item!r}")
            spans.append(tuple(item))
    for start, end, label in spans:
        if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool):
            raise CorpusFormatError(f"{where}: span offsets must be integers: {[start, end, label]!r}")
        if not isinstance(label, str) or not label.strip():
            raise CorpusFormatError(f"{where}: span label must be a non-empty string: {[start, end, label]!r}")
    return sorted(spans)


def read_jsonl_labeled(
    path: Path | str, nlp: Language, *, alignment_mode: AlignmentMode = "strict"
) -> tuple[list[Doc], ReadStats]:
    """Read JSONL with character-offset spans into fully annotated docs (see the module docstring).

    RAISES CorpusFormatError: bad JSON, a missing text, offsets outside the text, a span off token
        boundaries (strict) or that no token fits (contract), overlapping spans, or no docs at all; the
        message names the file, the line and the span.
    """
    path = Path(path)
    if alignment_mode not in ALIGNMENT_MODES:
        raise CorpusFormatError(
            f"{path}: unknown alignment_mode {alignment_mode!r} (choose from {', '.join(ALIGNMENT_MODES)})"
        )
    stats = ReadStats(format="jsonl")
    docs = []
    for lineno, record in _jsonl_records(path):
        where = f"{path}:{lineno}"
        text = _record_text(where, record)
        doc = _record_doc(where, record, text, nlp)
        ents: list[Span] = []
        for start, end, label in _record_spans(where, record):
            quoted = f"[{start}, {end}, {label!r}]"
            if not 0 <= start < end <= len(text):
                raise CorpusFormatError(f"{where}: span {quoted} is outside the text (length {len(text)})")
            span = doc.char_span(start, end, label=label, alignment_mode=alignment_mode)
            if span is None or len(span) == 0:
                hint = " (try --alignment-mode contract or expand)" if alignment_mode == "strict" else ""
                raise CorpusFormatError(
                    f"{where}: span {quoted} {text[start:end]!r} is not on token boundaries "
                    f"of {[t.text for t in doc]}{hint}"
                )
            if (span.start_char, span.end_char) != (start, end):
                stats.realigned_spans += 1
            if ents and span.start < ents[-1].end:
                raise CorpusFormatError(
                    f"{where}: span {quoted} overlaps [{ents[-1].start_char}, {ents[-1].end_char}, {ents[-1].label_!r}]"
                )
            ents.append(span)
        doc.set_ents(ents, default="outside")
        docs.append(doc)
    if not docs:
        raise CorpusFormatError(f"{path}: empty file (no docs)")
    return docs, stats


# ---------------------------------------------------------------------------------------------
# .spacy and the dispatcher


def read_spacy_labeled(path: Path | str, vocab: Vocab) -> tuple[list[Doc], ReadStats]:
    """Read a DocBin; tokens without entity annotation become outside (counted)."""
    path = Path(path)
    try:
        docs = list(DocBin().from_disk(path).get_docs(vocab))
    except Exception as err:  # srsly / msgpack raise a variety of errors on a file that is no DocBin
        raise CorpusFormatError(f"{path}: not a readable .spacy DocBin ({type(err).__name__}: {err})") from None
    if not docs:
        raise CorpusFormatError(f"{path}: empty file (no docs)")
    stats = ReadStats(format="spacy")
    for doc in docs:
        if any(token.ent_iob == 0 for token in doc):
            stats.docs_without_ent_annotation += 1
            doc.set_ents(list(doc.ents), default="outside")
    return docs, stats


def read_labeled(
    path: Path | str,
    nlp: Language,
    *,
    format: str = "auto",
    scheme: Scheme = "auto",
    alignment_mode: AlignmentMode = "strict",
) -> tuple[list[Doc], ReadStats]:
    """Read labeled docs of any supported format (`detect_format`); entities fully annotated."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labeled data not found: {path}")
    kind = detect_format(path, format)
    if kind == "spacy":
        return read_spacy_labeled(path, nlp.vocab)
    if kind == "jsonl":
        return read_jsonl_labeled(path, nlp, alignment_mode=alignment_mode)
    sentences, read_scheme = read_columns(path, scheme=scheme)
    return [sentence_to_doc(nlp.vocab, w, t) for w, t in sentences], ReadStats(format="conll", scheme=read_scheme)


# ---------------------------------------------------------------------------------------------
# Unlabeled text


def unlabeled_texts(path: Path | str, nlp: Language, *, text_units) -> Iterator[str]:
    """The texts of an unlabeled source: .txt (cut by ``text_units(path)``), .jsonl (``"text"`` of each
    line), .spacy (each doc's text) or a folder of .txt files (name order)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise CorpusFormatError(f"{path}: no *.txt files in this directory")
        for file in files:
            yield from text_units(file)
        return
    if not path.is_file():
        raise FileNotFoundError(f"unlabeled text not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for lineno, record in _jsonl_records(path):
            text = " ".join(_record_text(f"{path}:{lineno}", record).split())
            if text:
                yield text
    elif suffix == ".spacy":
        docs, _ = read_spacy_labeled(path, nlp.vocab)
        for doc in docs:
            if doc.text.strip():
                yield doc.text
    elif suffix in TEXT_SUFFIXES or not suffix:
        yield from text_units(path)
    else:
        raise CorpusFormatError(
            f"{path}: unknown unlabeled format {suffix!r}: use .txt, .jsonl, .spacy or a folder of .txt files"
        )


def text_key(text: str) -> str:
    """How docs are matched across files (whitespace-insensitive)."""
    return " ".join(text.split())
