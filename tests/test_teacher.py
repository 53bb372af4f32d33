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


def test_a_cased_roberta_encoder_is_a_teacher_too(toy_corpus, tmp_path):
    """Any local Hugging Face encoder folder: here a byte-level BPE RoBERTa, cased, trained and annotating."""
    from spacy.cli.train import train as spacy_train

    from spacy_compact_ner.store import get_teacher_logits
    from spacy_compact_ner.tools.annotate import annotate
    from tests.fixtures import TEACHER_OVERRIDES, make_tiny_roberta, toy_words

    encoder = make_tiny_roberta(tmp_path / "roberta", toy_words())
    overrides = {
        "paths.train": str(toy_corpus["train"]),
        "paths.dev": str(toy_corpus["dev"]),
        "paths.teacher_encoder": str(encoder),
        **TEACHER_OVERRIDES,
        "training.max_epochs": 8,
    }
    spacy_train(ROOT / "configs" / "teacher.cfg", tmp_path / "teacher", overrides=overrides)
    nlp = spacy.load(tmp_path / "teacher" / "model-best")
    assert type(nlp.get_pipe("transformer").model.transformer).__name__ == "RobertaModel"
    annotate(
        tmp_path / "teacher" / "model-best", [toy_corpus["train"]], tmp_path / "distill.spacy", show_progress=False
    )
    docs = list(DocBin(store_user_data=True).from_disk(tmp_path / "distill.spacy").get_docs(nlp.vocab))
    logits, tags = get_teacher_logits(docs[0])
    assert logits.shape == (len(docs[0]), len(tags))  # one distribution per spaCy token
