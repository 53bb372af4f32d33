"""Annotate with the tiny teacher, then distill a student on gold + teacher distributions."""

import contextlib
import io

import numpy
import pytest
import spacy
import srsly
from spacy.cli.train import train as spacy_train
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_compact_ner.reader import create_distill_corpus_reader
from spacy_compact_ner.store import get_teacher_logits, set_teacher_logits
from spacy_compact_ner.tools.annotate import annotate, ensemble_logits, parse_shard
from tests.fixtures import ROOT, toy_docs
from tests.util import TINY_STUDENT, ents, interrupt_annotate, student_nlp

STUDENT_OVERRIDES = {
    **TINY_STUDENT,
    "training.max_epochs": 40,
    "training.eval_frequency": 50,
    "training.batcher.size.start": 64,
    "training.batcher.size.stop": 64,
    "training.dropout": 0.0,
    "training.logger.progress_bar": False,
}


@pytest.fixture(scope="module")
def distill_inputs(tmp_path_factory):
    """20 gold docs (.spacy) and 30 unlabeled sentences (.txt), disjoint from the teacher's data."""
    root = tmp_path_factory.mktemp("distill_inputs")
    nlp = spacy.blank("en")
    DocBin(docs=toy_docs(nlp.vocab, 20, seed=7)).to_disk(root / "gold.spacy")
    unlabeled = [d.text for d in toy_docs(nlp.vocab, 30, seed=8, annotated=False)]
    (root / "unlabeled.txt").write_text("\n".join(unlabeled) + "\n", encoding="utf8")
    return root / "gold.spacy", root / "unlabeled.txt"


@pytest.fixture(scope="module")
def distilled(trained_teacher, distill_inputs, toy_corpus, toy_vectors, tmp_path_factory):
    root = tmp_path_factory.mktemp("distilled")
    stats = annotate(trained_teacher, list(distill_inputs), root / "distill.spacy", chunk_size=16, show_progress=False)
    # The shipped default: the student with static vectors.
    overrides = {
        "paths.train": str(root / "distill.spacy"),
        "paths.dev": str(toy_corpus["dev"]),
        **STUDENT_OVERRIDES,
        "components.ner.model.tok2vec.include_static_vectors": True,
        "paths.vectors": str(toy_vectors),
        "training.logger.output_file": str(root / "train_log.jsonl"),
    }
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        spacy_train(ROOT / "configs" / "student.cfg", root / "student", overrides=overrides)
    (root / "train_table.txt").write_text(table.getvalue(), encoding="utf8")
    return root, stats


def test_annotate_keeps_gold_and_stores_distributions(distilled, trained_teacher):
    root, stats = distilled
    assert (stats.docs, stats.labeled_docs) == (50, 20)
    assert not (root / "distill.spacy.parts").exists()
    teacher = spacy.load(trained_teacher)
    docs = list(DocBin(store_user_data=True).from_disk(root / "distill.spacy").get_docs(teacher.vocab))
    assert sum(d.has_annotation("ENT_IOB") for d in docs) == 20
    for doc in docs:
        logits, tags = get_teacher_logits(doc)
        assert logits.shape == (len(doc), len(tags)) and tags == teacher.get_pipe("ner").tags
    # The stored logits are the teacher's own, to float16 precision.
    doc = docs[-1]
    expected = teacher.get_pipe("ner").predict(list(teacher.pipe([doc.text], disable=["ner"])))[0]
    numpy.testing.assert_allclose(get_teacher_logits(doc)[0], expected, rtol=2e-3, atol=2e-3)


def test_student_learns_the_teacher_on_unlabeled_text(distilled, trained_teacher, distill_inputs):
    root, _ = distilled
    student = spacy.load(root / "student" / "model-last")
    teacher = spacy.load(trained_teacher)
    assert student.pipe_names == ["ner"] and "transformer" not in student.pipe_names
    assert student.get_pipe("ner").labels == teacher.get_pipe("ner").labels
    texts = distill_inputs[1].read_text(encoding="utf8").splitlines()
    references = list(teacher.pipe(texts))
    scores = student.evaluate([Example(student.make_doc(t), ref) for t, ref in zip(texts, references)])
    assert scores["ents_f"] >= 0.9


def test_spacy_train_shows_each_loss_term(distilled):
    root, _ = distilled
    table = (root / "train_table.txt").read_text(encoding="utf8")
    header = next(line.split() for line in table.splitlines() if line.split()[:2] == ["E", "#"])
    assert header[2:10] == ["LOSS", "NER", "LOSS", "NER_GOLD", "LOSS", "NER_KD", "LOSS", "NER_P..."]
    log = list(srsly.read_jsonl(root / "train_log.jsonl"))
    assert len(log) >= 2
    terms = ("ner_gold", "ner_kd", "ner_pseudo_label")
    for line in log:
        assert set(line["losses"]) == {"ner", *terms}
        assert sum(line["losses"][t] for t in terms) == pytest.approx(line["losses"]["ner"], rel=1e-4)
    assert all(log[0]["losses"][t] > 0 for t in terms)  # gold and teacher docs, and tokens without gold


def test_stored_distributions_round_trip_through_docbin():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("a b c")
    rng = numpy.random.default_rng(0)
    logits = rng.normal(scale=8, size=(3, 5)).astype("float32")
    set_teacher_logits(doc, logits, ["O", "B-X", "I-X", "L-X", "U-X"])
    doc_bin = DocBin(store_user_data=True)
    doc_bin.add(doc)
    restored = next(DocBin(store_user_data=True).from_bytes(doc_bin.to_bytes()).get_docs(nlp.vocab))
    values, tags = get_teacher_logits(restored)
    numpy.testing.assert_array_equal(values, logits.astype("float16").astype("float32"))
    assert numpy.abs(values - logits).max() <= 8 * 4 * 2**-11  # float16: 11 significant bits
    assert tags == ["O", "B-X", "I-X", "L-X", "U-X"]


def test_distributions_that_do_not_fit_their_doc_are_named(tmp_path):
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Alice visited Paris")
    set_teacher_logits(doc, numpy.zeros((3, 5)), ["O", "B-X", "I-X", "L-X", "U-X"])
    short = nlp.make_doc("Alice visited")
    short.user_data.update(doc.user_data)
    DocBin(store_user_data=True, docs=[doc, short]).to_disk(tmp_path / "bad.spacy")
    reader = create_distill_corpus_reader(tmp_path / "bad.spacy")
    with pytest.raises(ValueError, match=r"bad.spacy, doc 1: .*'Alice visited'.*2 tokens x 5 tags"):
        list(reader(nlp))


def test_gold_repeat_yields_each_labeled_doc_that_many_times(tmp_path):
    nlp = spacy.blank("en")
    labeled = toy_docs(nlp.vocab, 3, seed=1)
    unlabeled = toy_docs(nlp.vocab, 4, seed=2, annotated=False)
    for doc in labeled + unlabeled:
        set_teacher_logits(doc, numpy.zeros((len(doc), 5)), ["O", "B-X", "I-X", "L-X", "U-X"])
    DocBin(store_user_data=True, docs=labeled + unlabeled).to_disk(tmp_path / "mixed.spacy")
    once = list(create_distill_corpus_reader(tmp_path / "mixed.spacy")(nlp))
    thrice = list(create_distill_corpus_reader(tmp_path / "mixed.spacy", gold_repeat=3)(nlp))
    assert [eg.reference.text for eg in once] == [d.text for d in labeled + unlabeled]
    counts = {d.text: sum(eg.reference.text == d.text for eg in thrice) for d in labeled + unlabeled}
    assert [counts[d.text] for d in labeled] == [3, 3, 3]
    assert [counts[d.text] for d in unlabeled] == [1, 1, 1, 1]
    assert all(eg.reference.has_annotation("ENT_IOB") for eg in thrice[:9])
    with pytest.raises(ValueError, match="gold_repeat must be an integer >= 1, got 0"):
        create_distill_corpus_reader(tmp_path / "mixed.spacy", gold_repeat=0)


def test_student_labels_must_match_the_teacher(tmp_path):
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Alice visited Paris")
    set_teacher_logits(doc, numpy.zeros((3, 5)), ["O", "B-PER", "I-PER", "L-PER", "U-PER"])
    student = student_nlp()
    student.get_pipe("ner").add_label("LOC")
    with pytest.raises(ValueError, match=r"labels \['LOC', 'PER'\] differ from the teacher's labels \['PER'\]"):
        student.initialize(lambda: [Example(nlp.make_doc(doc.text), doc)])


def test_annotate_resumes_after_an_interruption(trained_teacher, distill_inputs, tmp_path, monkeypatch):
    output = tmp_path / "out.spacy"
    interrupt_annotate(
        monkeypatch, trained_teacher, list(distill_inputs), output, chunk_size=16, batch_size=16, show_progress=False
    )
    assert not output.exists()  # nothing that looks complete
    assert len(list((tmp_path / "out.spacy.parts").glob("part-*.spacy"))) == 1
    stats = annotate(trained_teacher, list(distill_inputs), output, chunk_size=16, batch_size=16, show_progress=False)
    assert stats.chunks_reused == 1 and stats.docs == 50
    fresh = annotate(
        trained_teacher, list(distill_inputs), tmp_path / "fresh.spacy", chunk_size=16, show_progress=False
    )
    assert fresh.chunks_reused == 0
    vocab = spacy.blank("en").vocab
    resumed_docs = list(DocBin(store_user_data=True).from_disk(output).get_docs(vocab))
    fresh_docs = list(DocBin(store_user_data=True).from_disk(tmp_path / "fresh.spacy").get_docs(vocab))
    assert [d.text for d in resumed_docs] == [d.text for d in fresh_docs]
    for a, b in zip(resumed_docs, fresh_docs):
        numpy.testing.assert_array_equal(get_teacher_logits(a)[0], get_teacher_logits(b)[0])
        assert ents(a) == ents(b)


def test_shards_partition_the_input(trained_teacher, distill_inputs, tmp_path):
    texts = []
    for k in range(2):
        out = tmp_path / f"shard{k}.spacy"
        stats = annotate(trained_teacher, list(distill_inputs), out, shard=f"{k}/2", show_progress=False)
        texts.append([d.text for d in DocBin().from_disk(out).get_docs(spacy.blank("en").vocab)])
        assert stats.docs == len(texts[-1])
    assert len(texts[0]) + len(texts[1]) == 50 and not set(texts[0]) & set(texts[1]) - {""}
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_missing_teacher_is_reported_without_a_hub_lookup(distill_inputs, tmp_path):
    with pytest.raises(FileNotFoundError, match="Teacher pipeline not found: .*nope"):
        annotate(tmp_path / "nope", list(distill_inputs), tmp_path / "o.spacy", show_progress=False)


def _softmax(z):
    e = numpy.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_ensemble_logits_average_the_distributions():
    rng = numpy.random.default_rng(0)
    a, b, c = (rng.normal(scale=3, size=(5, 7)).astype("float32") for _ in range(3))
    mean = (_softmax(a) + _softmax(b) + _softmax(c)) / 3
    assert numpy.allclose(_softmax(ensemble_logits([a, b, c])), mean, atol=1e-6)
    assert numpy.array_equal(ensemble_logits([a]), a)
    assert numpy.isfinite(ensemble_logits([a * 1000, b])).all()  # stable for huge logits


def test_annotate_with_an_ensemble_stores_the_mean_distribution(trained_teacher, distill_inputs, tmp_path):
    other = tmp_path / "other_teacher"  # same tags, other distributions: the teacher with a shifted bias
    nlp = spacy.load(trained_teacher)
    node = [n for n in nlp.get_pipe("ner").model.walk() if n.has_param("b")][-1]
    node.set_param("b", node.get_param("b") + numpy.linspace(-2, 2, node.get_param("b").shape[0], dtype="f"))
    nlp.to_disk(other)
    gold = [distill_inputs[0]]
    stored = {}
    for name, teacher, ensemble in (("a", trained_teacher, ()), ("b", other, ()), ("ab", trained_teacher, [other])):
        annotate(teacher, gold, tmp_path / f"{name}.spacy", ensemble=ensemble, show_progress=False)
        docs = DocBin(store_user_data=True).from_disk(tmp_path / f"{name}.spacy").get_docs(nlp.vocab)
        stored[name] = [_softmax(get_teacher_logits(d)[0]) for d in docs]
    assert not numpy.allclose(stored["a"][0], stored["b"][0], atol=1e-2)
    for a, b, ab in zip(stored["a"], stored["b"], stored["ab"]):
        assert numpy.allclose(ab, (a + b) / 2, atol=2e-3)  # float16 storage
    manifest = (tmp_path / "ab.spacy.json").read_text()
    assert "other_teacher" in manifest
    with pytest.raises(FileNotFoundError, match="nope"):
        annotate(trained_teacher, gold, tmp_path / "x.spacy", ensemble=[tmp_path / "nope"], show_progress=False)
