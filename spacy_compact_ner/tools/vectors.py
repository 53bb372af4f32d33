"""Static word vectors for ``[initialize] vectors``: GloVe 6B 50d converted to a spaCy vectors table,
or a spaCy pipeline's table (en_core_web_md) pruned to its most frequent words, saved as a blank
spaCy pipeline folder.

Both are pruned by word frequency. GloVe's file order is its corpus frequency order (``the , . of to
...``), so its first N words are its N most frequent. en_core_web_md's rows are in no frequency
order (and most of its 685k keys share rows), so a pruned copy keeps the rows of the most frequent
words by GloVe's order, with every case variant of those words that the table has.

A table can also be reduced to its first principal components (``reduce_dims``): fewer dimensions
make a smaller table on disk (en_core_web_md's 300 dims to 64-128) at the cost of the variance the
dropped components held, which the written table reports.

A model reads vectors only in ``initialize``; ``nlp.to_disk`` then saves the table inside the
pipeline, so a trained pipeline never needs the source again.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.strings import StringStore
from spacy.util import registry
from spacy.vectors import Vectors
from spacy.vocab import Vocab

GLOVE_VECTORS = "glove_6B_50d_emb.npy"
GLOVE_INDEX = "glove_6B_index.parquet"


class VectorsError(ValueError):
    """A vectors source is missing or malformed (the message names the path)."""


@dataclass
class VectorsInfo:
    """What a written vectors table holds."""

    source: str
    kind: str
    rows: int
    keys: int
    dims: int
    attr: str
    table_bytes: int
    output: str
    # With reduced dimensions: the share of the source table's variance the kept components hold.
    variance_kept: Optional[float] = None


def read_glove(directory: Path | str) -> Tuple[List[str], numpy.ndarray]:
    """Read GloVe words (frequency order) and their vectors (memory-mapped) from ``directory``.

    RAISES VectorsError: If a file is missing, unreadable or the two disagree in length.
    """
    directory = Path(directory)
    emb, index = directory / GLOVE_VECTORS, directory / GLOVE_INDEX
    for path in (emb, index):
        if not path.is_file():
            raise VectorsError(
                f"GloVe file not found: {path} (fetch it with `python -m spacy_compact_ner assets --with-glove`)"
            )
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - pyarrow is in the teacher extra
        raise VectorsError(f"reading {index} needs pyarrow: pip install 'spacy-compact-ner[teacher]'") from err
    try:
        words = [str(w) for w in pq.read_table(index).column(0).to_pylist()]
        data = numpy.load(emb, mmap_mode="r")
    except Exception as err:  # noqa: BLE001 - any parse failure is a bad source
        raise VectorsError(f"could not read GloVe vectors from {directory}: {err}") from err
    if data.ndim != 2 or data.shape[0] != len(words):
        raise VectorsError(f"{emb} has shape {data.shape} but {index} lists {len(words)} words")
    return words, data


def glove_table(directory: Path | str, n_rows: int) -> Vectors:
    """The ``n_rows`` most frequent GloVe words as a spaCy table keyed by ``ORTH``.

    GloVe is lowercase; each row is also keyed by the word's capitalised, title-case and upper-case
    forms (``obama``, ``Obama``, ``OBAMA``). A table keyed by ``LOWER`` would be simpler, but spaCy
    3.8 saves a default-mode table's ``attr`` nowhere, so it would read ``ORTH`` after loading.
    """
    words, data = read_glove(directory)
    n = _check_rows(n_rows, len(words))
    strings = StringStore()
    table = Vectors(strings=strings, data=numpy.ascontiguousarray(data[:n], dtype="float32"), name=f"glove_6B_50d_{n}")
    for row, word in enumerate(words[:n]):
        for form in dict.fromkeys((word, word.capitalize(), word.title(), word.upper())):
            table.add(strings.add(form), row=row)
    return table


def pruned_table(pipeline: Path | str, rank_words: Sequence[str], n_rows: int) -> Tuple[Vectors, StringStore]:
    """Keep the rows of a pipeline's vectors that the most frequent words use, up to ``n_rows`` rows.

    pipeline (Path): A spaCy pipeline folder (or its ``vocab/`` folder) with a vectors table.
    rank_words (Sequence[str]): Lowercase words, most frequent first (GloVe's order).
    n_rows (int): Rows to keep.
    RETURNS (Tuple[Vectors, StringStore]): The pruned table and the strings of its keys.
    """
    pipeline = Path(pipeline)
    vocab_dir = pipeline / "vocab" if (pipeline / "vocab").is_dir() else pipeline
    if not (vocab_dir / "vectors").is_file():
        raise VectorsError(f"no vectors table in {pipeline} (expected {vocab_dir / 'vectors'})")
    source = Vocab().from_disk(vocab_dir)
    table = source.vectors
    n = _check_rows(n_rows, table.shape[0])
    variants: Dict[str, List[int]] = {}
    for key in table.key2row:
        variants.setdefault(source.strings[key].lower(), []).append(key)
    new_row: Dict[int, int] = {}
    kept: List[Tuple[str, int]] = []
    for word in rank_words:
        if len(new_row) >= n:
            break
        for key in variants.get(word, ()):
            row = table.key2row[key]
            if row not in new_row:
                if len(new_row) >= n:
                    continue
                new_row[row] = len(new_row)
            kept.append((source.strings[key], new_row[row]))
    if not new_row:
        raise VectorsError(f"none of the ranked words is in the vectors of {pipeline}")
    old_rows = numpy.array(sorted(new_row, key=new_row.get))
    data = numpy.ascontiguousarray(numpy.asarray(table.data)[old_rows], dtype="float32")
    strings = StringStore()
    pruned = Vectors(
        strings=strings, shape=data.shape, name=f"{table.name or 'vectors'}_{len(old_rows)}", attr=_attr_name(table)
    )
    pruned.data[:] = data
    for text, row in kept:
        pruned.add(strings.add(text), row=row)
    return pruned, strings


def reduce_dims(table: Vectors, dims: int) -> Tuple[Vectors, float]:
    """Project ``table`` onto its ``dims`` first principal components (fitted on its own rows, centred).

    Every key keeps its row; the rows become their coordinates along the components, largest first,
    so nearest neighbours by cosine change only as much as the dropped variance allows.
    RETURNS (Tuple[Vectors, float]): The reduced table (same strings, same attr) and the share of the
        table's variance the kept components hold.
    RAISES VectorsError: If ``dims`` is not between 1 and the table's width.
    """
    n_rows, width = table.shape
    if not 1 <= dims <= width:
        raise VectorsError(f"--dims must be between 1 and the table's {width} dimensions, got {dims}")
    data = numpy.asarray(table.data, dtype="float64")
    centred = data - data.mean(axis=0)
    _, singular, components = numpy.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    kept = float(variance[:dims].sum() / variance.sum()) if variance.sum() > 0 else 1.0
    reduced = numpy.ascontiguousarray(centred @ components[:dims].T, dtype="float32")
    out = Vectors(
        strings=table.strings, shape=reduced.shape, name=f"{table.name or 'vectors'}_pca{dims}", attr=_attr_name(table)
    )
    out.data[:] = reduced
    for key, row in table.key2row.items():
        out.add(key, row=row)
    return out, kept


def write_vectors(table: Vectors, output: Path | str, *, source: str, kind: str, lang: str = "en") -> VectorsInfo:
    """Save ``table`` as a blank ``lang`` pipeline folder, usable as ``[initialize] vectors``."""
    output = Path(output)
    nlp = spacy.blank(lang)
    for key in table.keys():
        nlp.vocab.strings.add(table.strings[key])
    table.strings = nlp.vocab.strings
    nlp.vocab.vectors = table
    # Written next to the output, then moved into place: a crash never leaves half a table there.
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    nlp.to_disk(staging)
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
    info = VectorsInfo(
        source=source,
        kind=kind,
        rows=int(table.shape[0]),
        keys=len(table.key2row),
        dims=int(table.shape[1]),
        attr=_attr_name(table),
        table_bytes=int(table.data.nbytes),
        output=str(output),
    )
    return info


def build_vectors(
    source: Path | str,
    output: Path | str,
    *,
    n_rows: int,
    rank_source: Optional[Path | str] = None,
    n_words: int = 0,
    dims: int = 0,
) -> VectorsInfo:
    """Convert or prune ``source`` (a GloVe folder or a spaCy pipeline) into ``output``.

    rank_source (Path): The GloVe folder whose word order ranks a spaCy table's words (needed for
        a spaCy pipeline source).
    n_words (int): For a spaCy pipeline source, key only the case forms of this many most frequent
        words (0: every ranked word whose row is kept). Each key costs about 25 bytes on disk (its hash,
        row and string): en_core_web_md's 20,000 rows are shared by ~450,000 keys of GloVe's words.
    dims (int): Keep this many principal components of the pruned table (``reduce_dims``); 0 keeps all.
    """
    source = Path(source)
    if dims < 0:
        raise VectorsError(f"--dims must be >= 0 (0 keeps every dimension), got {dims}")
    if (source / GLOVE_VECTORS).is_file():
        table, kind = glove_table(source, n_rows), "glove"
    elif (source / "vocab" / "vectors").is_file() or (source / "vectors").is_file():
        if rank_source is None:
            raise VectorsError(
                f"pruning the vectors of {source} needs --rank-words, a GloVe folder for word frequencies"
            )
        if n_words < 0:
            raise VectorsError(f"--words must be >= 0 (0: every ranked word), got {n_words}")
        words, _ = read_glove(rank_source)
        words = words[:n_words] if n_words else words
        (table, _), kind = pruned_table(source, words, n_rows), "spacy-pruned"
    else:
        raise VectorsError(f"{source} is neither a GloVe folder ({GLOVE_VECTORS}) nor a spaCy pipeline with vectors")
    if not dims:
        return write_vectors(table, output, source=str(source), kind=kind)
    reduced, kept = reduce_dims(table, dims)
    info = write_vectors(reduced, output, source=str(source), kind=f"{kind}-pca")
    info.variance_kept = kept
    return info


def _check_rows(n_rows: int, available: int) -> int:
    if n_rows < 1:
        raise VectorsError(f"the number of vector rows must be >= 1, got {n_rows}")
    return min(n_rows, available)


def _attr_name(table: Vectors) -> str:
    from spacy.attrs import IDS

    attr = getattr(table, "attr", "ORTH")
    if isinstance(attr, str):
        return attr
    names = {v: k for k, v in IDS.items()}
    return names.get(attr, "ORTH")


def check_vectors_path(path: Optional[str]) -> None:
    """Raise a FileNotFoundError naming ``path`` if it is set but is not a vectors folder."""
    if not path:
        return
    folder = Path(path)
    if not ((folder / "vocab" / "vectors").is_file() or (folder / "vectors").is_file()):
        raise FileNotFoundError(
            f"Vectors not found: {folder.resolve()} is not a spaCy pipeline folder with a vectors table "
            "(paths.vectors / [initialize] vectors). Build one with `python -m spacy_compact_ner vectors "
            "assets/glove training/vectors/glove-20000 --rows 20000`."
        )


@registry.callbacks("spacy-compact-ner.require_vectors.v1")
def require_vectors(*, path: Optional[str]) -> Callable[[Language], Language]:
    """An ``[initialize.before_init]`` check that ``[initialize] vectors`` (if set) exists, with its path."""

    def check(nlp: Language) -> Language:
        check_vectors_path(path)
        return nlp

    return check
