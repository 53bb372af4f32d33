"""The teacher body (tiny generated BERT listener + case features) trains with `spacy train`; the
default (plain) body is the listener alone."""
import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from tests.fixtures import ROOT
from tests.util import ents


def test_teacher_overfits_the_toy_corpus(trained_teacher, toy_corpus):
    nlp = spacy.load(trained_teacher)
    assert nlp.pipe_names == ["transformer", "ner"]
    docs = list(DocBin().from_disk(toy_corpus["train"]).get_docs(nlp.vocab))
    scores = nlp.evaluate([Example(nlp.make_doc(d.text), d) for d in docs])
    assert scores["ents_f"] == 1.0


def test_teacher_round_trips_offline(trained_teacher, tmp_path):
    nlp = spacy.load(trained_teacher)
    texts = ["Alice visited Paris .", "yesterday , Bob saw Oslo for Initech Corp ."]
    before = nlp.get_pipe("ner").predict(list(nlp.pipe(texts, disable=["ner"])))
    nlp.to_disk(tmp_path / "copy")
    loaded = spacy.load(tmp_path / "copy")
    after = loaded.get_pipe("ner").predict(list(loaded.pipe(texts, disable=["ner"])))
    for a, b in zip(before, after):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert [ents(d) for d in loaded.pipe(texts)] == [ents(d) for d in nlp.pipe(texts)]
    restored = spacy.load(trained_teacher)
    restored.from_bytes(nlp.to_bytes())
    assert [ents(d) for d in restored.pipe(texts)] == [ents(d) for d in nlp.pipe(texts)]


def test_case_features_are_part_of_the_teacher(trained_teacher):
    nlp = spacy.load(trained_teacher)
    tok2vec = nlp.get_pipe("ner").model.get_ref("tok2vec")
    assert tok2vec.has_ref("features") and tok2vec.has_ref("transformer")
    # The uncased encoder cannot tell these apart; the SHAPE/PREFIX features can.
    lower, upper = nlp.get_pipe("ner").predict(list(nlp.pipe(["paris", "Paris"], disable=["ner"])))
    assert not numpy.allclose(lower, upper)


def test_missing_encoder_path_fails_before_any_hub_lookup(toy_corpus, tmp_path):
    from spacy.util import load_config, load_model_from_config

    missing = tmp_path / "no-such-encoder"
    config = load_config(ROOT / "configs" / "teacher.cfg", overrides={"paths.teacher_encoder": str(missing)})
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    with pytest.raises(FileNotFoundError, match="Teacher encoder folder not found.*no-such-encoder"):
        nlp.initialize()


def test_default_teacher_is_the_plain_transformer():
    from spacy.util import load_config, load_model_from_config

    config = load_config(ROOT / "configs" / "teacher.cfg", overrides={"paths.teacher_encoder": "unused"})
    nlp = load_model_from_config(config, auto_fill=True, validate=True)  # no weights load before initialize
    tok2vec = nlp.get_pipe("ner").model.get_ref("tok2vec")
    assert tok2vec.name.startswith("transformer-listener")
    assert not any(n.name == "static_vectors" or n.name.startswith("hashembed") for n in tok2vec.walk())
