"""Reading the tweet sources: VADER's nested archive, and a pandas pickle without pandas."""

import io
import lzma
import os
import pickle
import sys
import tarfile
import types

import numpy
import pytest

from spacy_compact_ner.tools.tweets import (
    TweetsFormatError,
    clean_tweet,
    dataframe_column,
    read_trump_tweets,
    read_vader_tweets,
    write_lines,
)


def _vader_archive(path, text: bytes):
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("hutto_ICWSM_2014/tweets_GroundTruth.txt")
        info.size = len(text)
        tf.addfile(info, io.BytesIO(text))
    return path


def test_vader_tweets_come_out_of_the_nested_archive_unescaped(tmp_path):
    text = b"1\t2.7\tSo lucky &amp; happy\r\n2\t-1.0\tAnother  line\twith tab? no\r\n"
    with pytest.raises(TweetsFormatError, match=r":2: expected id<TAB>score<TAB>text"):
        read_vader_tweets(_vader_archive(tmp_path / "bad.tar.gz", text))
    text = b"1\t2.7\tSo lucky &amp; happy\r\n\r\n2\t-1.0\tAnother   day\r\n"
    assert read_vader_tweets(_vader_archive(tmp_path / "a.tar.gz", text)) == ["So lucky & happy", "Another day"]
    assert clean_tweet("a\nb &lt;3 ") == "a b <3"
    assert write_lines(["one", "", "two"], tmp_path / "out" / "t.txt") == 2
    assert (tmp_path / "out" / "t.txt").read_text() == "one\ntwo\n"


@pytest.fixture
def fake_pandas(monkeypatch):
    """Classes under pandas' module names that pickle the way a pandas 2 DataFrame does (block manager)."""
    modules = {}
    for name in ("pandas", "pandas.core", "pandas.core.frame", "pandas.core.internals", "pandas.core.indexes"):
        modules[name] = types.ModuleType(name)
    modules["pandas.core.internals.managers"] = types.ModuleType("pandas.core.internals.managers")
    modules["pandas._libs.internals"] = types.ModuleType("pandas._libs.internals")
    modules["pandas.core.indexes.base"] = types.ModuleType("pandas.core.indexes.base")

    def put(module, obj):
        obj.__module__, obj.__qualname__ = module, obj.__name__
        setattr(modules[module], obj.__name__, obj)
        return obj

    def _unpickle_block(values, placement, ndim):
        raise AssertionError("never called on load")

    def _new_Index(cls, d):
        raise AssertionError("never called on load")

    put("pandas._libs.internals", _unpickle_block)
    put("pandas.core.indexes.base", _new_Index)
    Index = put("pandas.core.indexes.base", type("Index", (), {}))

    class Block:
        def __init__(self, values, placement):
            self.values, self.placement = values, placement

        def __reduce__(self):
            return (_unpickle_block, (self.values, self.placement, 2))

    class Columns:
        def __init__(self, names):
            self.names = names

        def __reduce__(self):
            return (_new_Index, (Index, {"data": numpy.array(self.names, dtype=object), "name": None}))

    class BlockManager:
        def __init__(self, blocks, axes):
            self.blocks, self.axes = blocks, axes

        def __reduce__(self):
            return (type(self), (self.blocks, self.axes))

    put("pandas.core.internals.managers", BlockManager)
    DataFrame = put("pandas.core.frame", type("DataFrame", (), {}))
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)

    def frame(columns, blocks):
        df = DataFrame()
        df._mgr = BlockManager(tuple(Block(v, p) for v, p in blocks), [Columns(columns), Columns([])])
        df._typ = "dataframe"
        return df

    return frame


def test_a_pandas_pickle_column_is_read_without_pandas(fake_pandas, tmp_path):
    texts = numpy.array([["web", "phone"], ["Hi &amp; bye", "Second\ntweet"]], dtype=object)
    ids = numpy.array([[1, 2]])
    df = fake_pandas(["source", "text", "id"], [(ids, numpy.array([2])), (texts, slice(0, 2, 1))])
    data = pickle.dumps(df, protocol=5)
    sys.modules.pop("pandas")  # loading must not need the (fake) pandas
    assert dataframe_column(data, "source") == ["web", "phone"]
    assert dataframe_column(data, "id") == [1, 2]
    path = tmp_path / "t.pkl.compress"
    path.write_bytes(lzma.compress(data))
    assert read_trump_tweets(path) == ["Hi & bye", "Second tweet"]
    with pytest.raises(TweetsFormatError, match="no column 'nope'"):
        dataframe_column(data, "nope")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_the_unpickler_refuses_anything_but_arrays_and_pandas_records():
    with pytest.raises(pickle.UnpicklingError, match="refused to load"):
        dataframe_column(pickle.dumps(_Evil()), "text")
    with pytest.raises(TweetsFormatError, match="not a pickled pandas DataFrame"):
        dataframe_column(pickle.dumps({"text": ["a"]}), "text")
