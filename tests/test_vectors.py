"""Static vectors: GloVe conversion, frequency pruning of a spaCy table, the student and teacher with
vectors (loaded only in initialize, saved inside the pipeline), and the errors on bad sources."""

import shutil

import numpy
import pytest
import spacy
from spacy.cli.train import train as spacy_train
from spacy.strings import StringStore
from spacy.training import Example
from spacy.vectors import Vectors
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_compact_ner.tools.cli import app
from spacy_compact_ner.tools.vectors import (
    GLOVE_INDEX,
    VectorsError,
    build_vectors,
    glove_table,
    pruned_table,
    read_glove,
    reduce_dims,
)
from tests.fixtures import ROOT, TEACHER_OVERRIDES, toy_words, write_tiny_glove
from tests.util import ents, student_nlp, toy_examples

WORDS = ["the", "for", "paris", "alice", "visited", "acme", "corp", "london", "bob", "tokyo"]
STUDENT_OVERRIDES = {
    "components.ner.model.tok2vec.width": 32,
    "components.ner.model.tok2vec.rows": [500, 200, 200, 100],
    "components.ner.model.tok2vec.n_iter": 2,
    "components.ner.model.tok2vec.include_static_vectors": True,
    "training.max_epochs": 30,
    "training.eval_frequency": 1000,
    "training.batcher.size.start": 16,
    "training.batcher.size.stop": 16,
    "training.logger.progress_bar": False,
}


@pytest.fixture(scope="module")
def glove_dir(tmp_path_factory):
    return write_tiny_glove(tmp_path_factory.mktemp("glove") / "glove", WORDS, dims=6)


def test_glove_keeps_the_most_frequent_rows_with_their_case_forms(glove_dir):
    words, data = read_glove(glove_dir)
    assert words == WORDS
    table = glove_table(glove_dir, 4)
    assert table.shape == (4, 6)
    for word, row in (("the", 0), ("Paris", 2), ("PARIS", 2), ("Alice", 3), ("alice", 3)):
        numpy.testing.assert_array_equal(table[table.strings[word]], data[row])
    assert table.strings["visited"] not in table  # rank 5: pruned
    assert glove_table(glove_dir, 10**6).shape[0] == len(WORDS)  # more rows than words: all of them


def test_written_glove_table_gives_vectors_to_capitalised_tokens(glove_dir, tmp_path):
    info = build_vectors(glove_dir, tmp_path / "vec", n_rows=10)
    assert (info.kind, info.rows, info.dims, info.attr) == ("glove", 10, 6, "ORTH")
    nlp = spacy.load(tmp_path / "vec")
    doc = nlp("Alice visited PARIS unknownword")
    assert [t.has_vector for t in doc] == [True, True, True, False]
    numpy.testing.assert_array_equal(doc[0].vector, nlp.vocab["alice"].vector)


def test_pruned_spacy_table_keeps_rows_of_the_most_frequent_words(tmp_path):
    strings = StringStore()
    data = numpy.arange(4 * 3, dtype="float32").reshape(4, 3)
    table = Vectors(strings=strings, data=data)
    # Rows in no frequency order; several case forms share a row, as in en_core_web_md.
    for text, row in (("zebra", 0), ("Paris", 1), ("paris", 1), ("PARIS", 1), ("the", 2), ("The", 2), ("acme", 3)):
        table.add(strings.add(text), row=row)
    vocab = Vocab(strings=strings)
    vocab.vectors = table
    vocab.to_disk(tmp_path / "vocab")
    pruned, kept = pruned_table(tmp_path, ["the", "paris", "acme", "zebra"], 2)
    assert pruned.shape == (2, 3)
    assert sorted(kept[k] for k in pruned.key2row) == ["PARIS", "Paris", "The", "paris", "the"]
    numpy.testing.assert_array_equal(pruned[kept["The"]], data[2])
    numpy.testing.assert_array_equal(pruned[kept["PARIS"]], data[1])


def test_bad_vector_sources_are_errors_that_name_the_path(glove_dir, tmp_path):
    with pytest.raises(VectorsError, match=str(tmp_path / "nothing")):
        build_vectors(tmp_path / "nothing", tmp_path / "out", n_rows=5)
    broken = tmp_path / "broken"
    shutil.copytree(glove_dir, broken)
    (broken / GLOVE_INDEX).unlink()
    with pytest.raises(VectorsError, match=f"GloVe file not found: {broken / GLOVE_INDEX}"):
        build_vectors(broken, tmp_path / "out", n_rows=5)
    short = write_tiny_glove(tmp_path / "short", WORDS[:3])
    shutil.copy(short / GLOVE_INDEX, broken / GLOVE_INDEX)
    with pytest.raises(VectorsError, match="lists 3 words"):
        read_glove(broken)
    with pytest.raises(VectorsError, match=">= 1"):
        build_vectors(glove_dir, tmp_path / "out", n_rows=0)
    spacy_pipeline = tmp_path / "pipeline"
    build_vectors(glove_dir, spacy_pipeline, n_rows=5)
    with pytest.raises(VectorsError, match="needs --rank-words"):
        build_vectors(spacy_pipeline, tmp_path / "out", n_rows=5)


def test_vectors_command_writes_and_reports(glove_dir, tmp_path):
    result = CliRunner().invoke(app, ["vectors", str(glove_dir), str(tmp_path / "v"), "--rows", "3"])
    assert result.exit_code == 0, result.output
    assert "3 rows x 6 dims" in result.output
    result = CliRunner().invoke(app, ["vectors", str(tmp_path / "missing"), str(tmp_path / "w")])
    assert result.exit_code == 1 and "missing" in result.output


def test_reduced_dims_keep_keys_and_the_leading_variance(glove_dir, tmp_path):
    full = glove_table(glove_dir, 10)
    reduced, kept = reduce_dims(full, 2)
    assert reduced.shape == (10, 2) and dict(reduced.key2row) == dict(full.key2row)
    data = numpy.asarray(full.data, dtype="float64")
    centred = data - data.mean(axis=0)
    singular = numpy.linalg.svd(centred, compute_uv=False)
    assert kept == pytest.approx((singular[:2] ** 2).sum() / (singular**2).sum())
    # The kept coordinates carry exactly the variance of the two leading components.
    assert (numpy.asarray(reduced.data, dtype="float64") ** 2).sum() == pytest.approx(
        (singular[:2] ** 2).sum(), rel=1e-5
    )
    same, all_kept = reduce_dims(full, 6)
    assert all_kept == pytest.approx(1.0)
    # All components: a rotation of the centred rows, so distances between rows are unchanged.
    rows = numpy.asarray(same.data, dtype="float64")
    numpy.testing.assert_allclose(
        numpy.linalg.norm(rows[0] - rows[1:], axis=1), numpy.linalg.norm(centred[0] - centred[1:], axis=1), rtol=1e-5
    )
    for bad in (0, 7):
        with pytest.raises(VectorsError, match="between 1 and the table's 6 dimensions"):
            reduce_dims(full, bad)


def test_vectors_command_reduces_dims_and_the_table_loads(glove_dir, tmp_path):
    result = CliRunner().invoke(app, ["vectors", str(glove_dir), str(tmp_path / "v"), "--rows", "8", "--dims", "3"])
    assert result.exit_code == 0, result.output
    assert "8 rows x 3 dims" in result.output and "of the variance" in result.output
    nlp = spacy.load(tmp_path / "v")
    assert nlp.vocab.vectors.shape == (8, 3) and nlp("Alice")[0].has_vector
    result = CliRunner().invoke(app, ["vectors", str(glove_dir), str(tmp_path / "w"), "--dims", "-1"])
    assert result.exit_code == 1 and ">= 0" in result.output and not (tmp_path / "w").exists()


def test_pruning_a_spacy_table_to_the_most_frequent_words_keys_only_their_forms(glove_dir, tmp_path):
    build_vectors(glove_dir, tmp_path / "pipeline", n_rows=10)  # every word keyed in 2-3 case forms
    info = build_vectors(tmp_path / "pipeline", tmp_path / "top3", n_rows=10, rank_source=glove_dir, n_words=3)
    nlp = spacy.load(tmp_path / "top3")
    assert (info.rows, nlp.vocab.vectors.shape[0]) == (3, 3)
    assert {nlp.vocab.strings[k].lower() for k in nlp.vocab.vectors.key2row} == {"the", "for", "paris"}
    assert nlp("Paris")[0].has_vector and not nlp("alice")[0].has_vector
    with pytest.raises(VectorsError, match="--words must be >= 0"):
        build_vectors(tmp_path / "pipeline", tmp_path / "bad", n_rows=10, rank_source=glove_dir, n_words=-1)


def test_vectors_load_only_in_initialize(toy_vectors):
    nlp = student_nlp(
        **{"components.ner.model.tok2vec.include_static_vectors": True, "paths.vectors": str(toy_vectors)}
    )
    assert nlp.vocab.vectors.shape[0] == 0  # construction never reads the source
    nlp.initialize(lambda: toy_examples(nlp, 5))
    assert nlp.vocab.vectors.shape == (len(set(w.lower() for w in toy_words())), 8)


def test_student_with_vectors_overfits_and_reloads_without_the_source(toy_vectors, toy_corpus, tmp_path):
    source = tmp_path / "vectors"
    shutil.copytree(toy_vectors, source)
    overrides = {
        **STUDENT_OVERRIDES,
        "paths.train": str(toy_corpus["train"]),
        "paths.dev": str(toy_corpus["train"]),
        "paths.vectors": str(source),
    }
    spacy_train(ROOT / "configs" / "student.cfg", tmp_path / "out", overrides=overrides)
    model = tmp_path / "out" / "model-last"
    nlp = spacy.load(model)
    assert any(n.name == "static_vectors" for n in nlp.get_pipe("ner").model.walk())
    examples = toy_examples(nlp, 40)  # the training docs (toy_corpus train: 40 docs, seed 0)
    assert nlp.evaluate(examples)["ents_f"] == 1.0
    texts = ["Alice visited Paris .", "Dave Erinson left Lima for Globex Corp .", "nothing here"]
    before = [nlp.get_pipe("ner").predict([nlp.make_doc(t)])[0] for t in texts]
    shutil.rmtree(source)
    reloaded = spacy.load(model)
    assert reloaded.vocab.vectors.shape == nlp.vocab.vectors.shape and reloaded.vocab.vectors.shape[0] > 0
    after = [reloaded.get_pipe("ner").predict([reloaded.make_doc(t)])[0] for t in texts]
    for a, b in zip(before, after):
        numpy.testing.assert_array_equal(a, b)
    assert [ents(d) for d in reloaded.pipe(texts)] == [ents(d) for d in nlp.pipe(texts)]


def test_missing_vectors_path_is_a_clear_error(toy_corpus, tmp_path):
    missing = tmp_path / "no_such_vectors"
    overrides = {
        **STUDENT_OVERRIDES,
        "paths.train": str(toy_corpus["train"]),
        "paths.dev": str(toy_corpus["dev"]),
        "paths.vectors": str(missing),
    }
    with pytest.raises(FileNotFoundError, match=f"Vectors not found: {missing}"):
        spacy_train(ROOT / "configs" / "student.cfg", tmp_path / "out", overrides=overrides)


NO_TABLE = r"'ner' embeds static vectors \(include_static_vectors = true\) but the vocab has no vectors table"


def test_static_vectors_without_a_table_is_a_clear_error_before_reading_data():
    nlp = student_nlp(**{"components.ner.model.tok2vec.include_static_vectors": True})
    with pytest.raises(ValueError, match=NO_TABLE + r".*set \[initialize\] vectors.*--paths.vectors"):
        nlp.initialize(lambda: toy_examples(nlp, 5))
    read = []
    ner = nlp.get_pipe("ner")
    with pytest.raises(ValueError, match=NO_TABLE):
        ner.initialize(lambda: read.append(1) or toy_examples(nlp, 5), nlp=nlp)
    assert read == []  # no pass over the training data before the error


@pytest.fixture(scope="module")
def student_with_vectors(toy_vectors):
    nlp = student_nlp(
        **{"components.ner.model.tok2vec.include_static_vectors": True, "paths.vectors": str(toy_vectors)}
    )
    examples = toy_examples(nlp, 5)
    nlp.initialize(lambda: examples)
    return nlp, examples


def test_sourced_without_its_vectors_is_a_clear_error_at_predict_and_update(student_with_vectors):
    nlp, examples = student_with_vectors
    assert nlp("Alice visited Paris .") is not None
    sourced = spacy.blank("en")
    with pytest.warns(UserWarning, match="W113"):  # the source's vocab, and so its vectors, stay behind
        sourced.add_pipe("ner", source=nlp)
    assert sourced.vocab.vectors.shape[0] == 0
    with pytest.raises(ValueError, match=NO_TABLE + r".*sourced from a trained pipeline.*vocab=source.vocab"):
        sourced("Alice visited Paris .")
    egs = [Example(sourced.make_doc(eg.reference.text), eg.reference) for eg in examples]
    with pytest.raises(ValueError, match=NO_TABLE):
        sourced.update(egs)
    shared = spacy.blank("en", vocab=nlp.vocab)  # the fix the message gives
    shared.add_pipe("ner", source=nlp)
    assert ents(shared("Alice visited Paris .")) == ents(nlp("Alice visited Paris ."))


def test_vectors_that_vanish_or_change_width_are_clear_errors(student_with_vectors, tmp_path):
    nlp, _ = student_with_vectors
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    loaded.vocab.vectors = Vectors(strings=loaded.vocab.strings)
    with pytest.raises(ValueError, match=NO_TABLE):
        loaded("Alice visited Paris .")
    loaded.vocab.vectors = Vectors(strings=loaded.vocab.strings, shape=(3, 5))
    with pytest.raises(ValueError, match=r"'ner' embeds static vectors of 8 dims .* vectors table has 5"):
        loaded("Alice visited Paris .")


@pytest.mark.parametrize("attrs", [["SHAPE", "PREFIX", "SUFFIX"], []], ids=["features+vectors", "vectors"])
def test_teacher_with_vectors_trains_on_the_tiny_bert(attrs, tiny_bert, toy_corpus, toy_vectors, tmp_path):
    overrides = {
        "paths.train": str(toy_corpus["train"]),
        "paths.dev": str(toy_corpus["dev"]),
        "paths.teacher_encoder": str(tiny_bert),
        "paths.vectors": str(toy_vectors),
        "components.ner.model.tok2vec.include_static_vectors": True,
        "components.ner.model.tok2vec.feature_attrs": attrs,
        "components.ner.model.tok2vec.feature_rows": [100] * len(attrs),
        **TEACHER_OVERRIDES,
        "training.max_epochs": 3,
    }
    spacy_train(ROOT / "configs" / "teacher.cfg", tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-last")
    model = nlp.get_pipe("ner").model
    static = [n for n in model.walk() if n.name == "static_vectors"]
    assert len(static) == 1 and nlp.vocab.vectors.shape[1] == 8
    assert static[0].get_param("W").shape == (32, 8)
    features = model.get_ref("tok2vec").get_ref("features")
    assert any(n.name == "static_vectors" for n in features.walk())
    doc = nlp("Alice visited Paris .")
    assert all(e.label_ in ("PER", "LOC", "ORG") for e in doc.ents)
