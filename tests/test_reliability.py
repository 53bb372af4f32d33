"""Reliability of the student and of the data it reads: odd input gets a correct answer or a clear
error (saying what and where), never a crash, a hang or unbounded memory.

The teacher side (long docs through the strided span getter, annotate killed midway) is in
test_reliability_teacher.py.
"""

import random
import unicodedata
import zlib

import numpy
import pytest
import spacy
import srsly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.cli.train import train as spacy_train
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from spacy_compact_ner.reader import create_distill_corpus_reader
from spacy_compact_ner.store import set_teacher_logits
from spacy_compact_ner.tools.annotate import iter_input_docs
from tests.fixtures import ROOT, toy_docs, toy_sentences
from tests.util import TINY_STUDENT, ents, student_nlp, toy_examples, train

# Texts without any entity: a real NER corpus teaches that numbers and punctuation alone are not
# names, so the module's student is taught the same with these all-O docs (the test inputs below
# are different strings).
NEGATIVES = [
    "12 345 6789 .",
    "!!! ??? ... ---",
    "# @ $ % ^ & *",
    "2024-01-01 10:30",
    "(( )) [[ ]] {{ }}",
    "1 2 3 4 5",
    ";;; ::: ,,, ''' \"\"\"",
    "+1 555 0100 ext 42",
]
SENTENCE = "Carol Bobson saw Tokyo for Acme Corp ."
SENTENCE_ENTS = [(0, 2, "PER"), (3, 4, "LOC"), (5, 7, "ORG")]
URL = "https://example.com/" + "a" * 9980  # one 10,000-character token


@pytest.fixture(scope="module")
def student():
    nlp = student_nlp()
    examples = toy_examples(nlp, 30)
    for text in NEGATIVES:
        reference = nlp.make_doc(text)
        reference.set_ents([], default="outside")
        examples.append(Example(nlp.make_doc(text), reference))
    train(nlp, examples, steps=25)
    assert ents(nlp(SENTENCE)) == SENTENCE_ENTS
    return nlp


def check_annotation(nlp, text: str, doc: Doc) -> None:
    """What every prediction must satisfy, whatever the input."""
    ner = nlp.get_pipe("ner")
    assert doc.text == text  # nothing lost or altered
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)  # every token decided: none left missing
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)
        assert ent.label_ in ner.labels
        # As whitespace in spaCy's own NER: an entity never begins or ends on a token that renders
        # as nothing (whitespace, control or format characters).
        assert not _blank(doc[ent.start].text) and not _blank(doc[ent.end - 1].text), (text[:40], ent)
    group = doc.spans["compact_ner"]
    assert [(s.start, s.end, s.label_) for s in group] == ents(doc)
    scores = group.attrs["scores"]
    assert len(scores) == len(doc.ents) and all(0.0 < s <= 1.0 for s in scores)


def _blank(text: str) -> bool:
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") for c in text)


# (name, text): no entity is the only correct answer.
NO_ENTITIES = [
    ("empty", ""),
    ("space", " "),
    ("whitespace", " \t\n\r\n  \u3000 "),
    ("single punctuation", "?"),
    ("control characters", "\x01\x02\x07\x1b\x7f \x08\x0b\x0c \x1f"),
    ("NUL", "\x00"),
    ("NULs", "\x00 \x00\x00 \x00"),
    ("zero-width", "\u200b\u200d\ufeff\u2060"),
    ("all punctuation", "~`|\\ !@#$%^&*()_+-=[]{};':\",./<>? ... !!! ---"),
    ("all digits", "1234567890 42 3.14 0 0 0 99 100 101 102"),
]


@pytest.mark.parametrize("text", [t for _, t in NO_ENTITIES], ids=[n for n, _ in NO_ENTITIES])
def test_inputs_without_entities_get_none(student, text):
    doc = student(text)
    check_annotation(student, text, doc)
    assert doc.ents == ()


# (name, text): the sentence's entities must be found exactly, wherever it lands.
WITH_SENTENCE = [
    ("emoji", f"😀🇫🇷 {SENTENCE} 👍🏽"),
    ("combining characters", f"e\u0301\u0301\u0301 n\u0303 {SENTENCE}"),
    ("right-to-left", f"שלום עולם {SENTENCE} مرحبا بالعالم"),
    ("mixed scripts", f"東京 Москва Αθήνα {SENTENCE} ソウル"),
    ("control characters", f"\x01\x02 {SENTENCE} \x1b\x7f"),
    ("NUL", f"\x00 {SENTENCE} \x00"),
    ("10,000-char token", f"{URL} {SENTENCE} {URL}"),
    ("newlines and tabs", f"\n\n\t{SENTENCE}\n\n"),
]


@pytest.mark.parametrize("text", [t for _, t in WITH_SENTENCE], ids=[n for n, _ in WITH_SENTENCE])
def test_odd_text_around_a_sentence_keeps_its_entities(student, text):
    doc = student(text)
    check_annotation(student, text, doc)
    starts = [i for i in range(len(doc)) if doc[i : i + 8].text == SENTENCE]
    assert len(starts) == 1, [t.text[:20] for t in doc]
    offset = starts[0]
    inside = [(s - offset, e - offset, label) for s, e, label in ents(doc) if offset <= s < offset + 8]
    assert inside == SENTENCE_ENTS


@pytest.mark.parametrize("text", ["a", "Z", "é", "😀", URL, "\u0301", "ﷺ"])
def test_single_tokens_are_handled(student, text):
    doc = student(text)
    check_annotation(student, text, doc)
    assert len(doc) == 1 and len(doc.ents) <= 1


def test_a_million_character_doc_is_tagged_to_its_end(student):
    text = (SENTENCE + " ") * (1_000_000 // (len(SENTENCE) + 1) + 1)
    # spaCy's Language guards against texts over nlp.max_length (1,000,000 chars by default) with
    # E088, before any component runs; that is a clear error naming the limit...
    assert student.max_length == 1_000_000 and len(text) > 1_000_000
    with pytest.raises(ValueError, match=r"E088.*1000000"):
        student(text)
    # ...but the student itself has no length limit (a CNN with a fixed receptive field and a
    # Viterbi decoder linear in the length), so raising nlp.max_length is all a user needs to do.
    student.max_length = 2_000_000
    try:
        doc = student(text)
    finally:
        student.max_length = 1_000_000
    n = len(text) // (len(SENTENCE) + 1)
    assert len(doc) == 8 * n and doc.text == text
    expected = [(8 * i + s, 8 * i + e, label) for i in range(n) for s, e, label in SENTENCE_ENTS]
    assert ents(doc) == expected  # every entity, including those at the very end


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=120), min_size=1, max_size=6))
def test_random_unicode_never_crashes_and_batching_does_not_matter(student, texts):
    batched = list(student.pipe(texts, batch_size=4))
    for text, doc in zip(texts, batched):
        check_annotation(student, text, doc)
        assert ents(doc) == ents(student(text))  # same answer alone as in any batch


def test_a_training_batch_with_empty_docs_updates(student):
    texts = ["", SENTENCE, " ", "\x00"]
    refs = [student.make_doc(t) for t in texts]
    refs[1].set_ents([Span(refs[1], s, e, label=label) for s, e, label in SENTENCE_ENTS], default="outside")
    losses = student.get_pipe("ner").update([Example(student.make_doc(t), r) for t, r in zip(texts, refs)])
    assert numpy.isfinite(losses["ner"]) and losses["ner"] >= 0


# --------------------------------------------------------------------------------------------
# nlp.pipe


def pipe_texts(n: int = 300):
    rng = random.Random(0)
    texts = [" ".join(words) for words, _ in toy_sentences(n, seed=11)]
    extra = ["", " ", "\x00", URL[:300], "😀 Alice visited Paris ."]
    for text in extra:
        texts.insert(rng.randrange(len(texts)), text)
    return texts


def test_pipe_results_do_not_depend_on_batch_size(student):
    texts = pipe_texts()
    one_by_one = [ents(student(t)) for t in texts]
    assert sum(map(len, one_by_one)) > 500
    for batch_size in (1, 7, 10_000):
        assert [ents(d) for d in student.pipe(texts, batch_size=batch_size)] == one_by_one, batch_size
    assert [ents(d) for d in student.pipe(iter(texts), batch_size=64)] == one_by_one  # a generator
    assert list(student.pipe([], batch_size=10_000)) == []


def test_pipe_as_tuples_keeps_contexts_in_order(student):
    texts = pipe_texts(50)
    pairs = [(text, {"id": i}) for i, text in enumerate(texts)]
    out = list(student.pipe(pairs, as_tuples=True, batch_size=8))
    assert [context["id"] for _, context in out] == list(range(len(texts)))
    assert [doc.text for doc, _ in out] == texts
    assert [ents(doc) for doc, _ in out] == [ents(d) for d in student.pipe(texts)]


def test_pipe_with_two_processes_matches_one(student, tmp_path):
    student.to_disk(tmp_path / "student")
    loaded = spacy.load(tmp_path / "student")
    texts = pipe_texts(400)
    single = [ents(d) for d in loaded.pipe(texts, batch_size=32)]
    assert single == [ents(d) for d in student.pipe(texts)]
    multi = [ents(d) for d in loaded.pipe(texts, batch_size=32, n_process=2)]
    assert multi == single
    pairs = list(loaded.pipe([(t, i) for i, t in enumerate(texts)], as_tuples=True, n_process=2, batch_size=50))
    assert [i for _, i in pairs] == list(range(len(texts)))
    assert [ents(d) for d, _ in pairs] == single


def test_docs_that_carry_entities_are_overwritten_or_kept(student):
    ner = student.get_pipe("ner")
    doc = student.make_doc(SENTENCE)
    doc.set_ents([Span(doc, 5, 7, label="CUSTOM")], default="outside")
    assert ents(student(doc)) == SENTENCE_ENTS  # default: overwritten
    for batch_size in (1, 100):  # also through pipe, where the docs arrive with their entities
        docs = [student.make_doc(SENTENCE) for _ in range(3)]
        for d in docs:
            d.set_ents([Span(d, 5, 7, label="CUSTOM")], default="outside")
        ner.cfg["overwrite_ents"] = False
        try:
            kept = list(student.pipe(docs, batch_size=batch_size))
        finally:
            ner.cfg["overwrite_ents"] = True
        assert [ents(d) for d in kept] == [[(0, 2, "PER"), (3, 4, "LOC"), (5, 7, "CUSTOM")]] * 3


# --------------------------------------------------------------------------------------------
# Bounded memory


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_memory_stays_bounded_over_a_long_stream(student):
    sentences = [" ".join(words) for words, _ in toy_sentences(200, seed=3)]
    n = 100_000

    def stream():
        for i in range(n):
            # Varied docs from a bounded vocabulary: spaCy's StringStore keeps every new string for
            # the life of the process by design (use nlp.memory_zone() for unbounded vocabularies).
            yield f"{sentences[i % 200]} {i % 1000}"

    rss = {}
    count = 0
    n_ents = 0
    for count, doc in enumerate(student.pipe(stream(), batch_size=256), start=1):
        n_ents += len(doc.ents)
        if count in (10_000, n):
            rss[count] = _rss_mb()
    assert count == n and n_ents > 2 * n
    assert rss[n] - rss[10_000] < 50, rss


# --------------------------------------------------------------------------------------------
# Bad data fails early, saying what and where


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_files")
    nlp = spacy.blank("en")
    data = DocBin(docs=toy_docs(nlp.vocab, 30), store_user_data=True).to_bytes()
    files = {
        "truncated.spacy": data[: len(data) // 2],
        "truncated-header.spacy": data[:10],
        "json.spacy": b'{"text": "Alice visited Paris"}',
        "text.spacy": "Alice visited Paris .\n".encode("utf8"),
        "msgpack-not-docbin.spacy": zlib.compress(srsly.msgpack_dumps({"version": 1, "docs": []})),
        "empty.spacy": b"",
        "no-docs.spacy": DocBin().to_bytes(),
    }
    for name, content in files.items():
        (root / name).write_bytes(content)
    return root


UNREADABLE = [
    ("truncated.spacy", r"truncated\.spacy is not a readable spaCy DocBin \(truncated or another format\?\)"),
    ("truncated-header.spacy", r"truncated-header\.spacy is not a readable spaCy DocBin"),
    ("json.spacy", r"json\.spacy is not a readable spaCy DocBin"),
    ("text.spacy", r"text\.spacy is not a readable spaCy DocBin"),
    ("msgpack-not-docbin.spacy", r"msgpack-not-docbin\.spacy is not a readable spaCy DocBin.*'attrs'"),
    ("empty.spacy", r"empty\.spacy is empty \(0 bytes\): not a spaCy DocBin"),
]


@pytest.mark.parametrize("name,message", UNREADABLE, ids=[n for n, _ in UNREADABLE])
def test_unreadable_docbin_through_the_distill_reader(bad_files, name, message):
    reader = create_distill_corpus_reader(bad_files / name)
    with pytest.raises(ValueError, match=message):
        list(reader(spacy.blank("en")))


@pytest.mark.parametrize("name,message", UNREADABLE, ids=[n for n, _ in UNREADABLE])
def test_unreadable_docbin_as_annotate_input(bad_files, name, message):
    with pytest.raises(ValueError, match=message):
        list(iter_input_docs(spacy.blank("en"), [bad_files / name]))


def test_unreadable_docbin_inside_an_input_folder_is_named(bad_files, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    DocBin(docs=toy_docs(spacy.blank("en").vocab, 5)).to_disk(folder / "a-good.spacy")
    (folder / "b-bad.spacy").write_bytes((bad_files / "truncated.spacy").read_bytes())
    docs = iter_input_docs(spacy.blank("en"), [folder])
    assert len([next(docs) for _ in range(5)]) == 5  # the good file is read first
    with pytest.raises(ValueError, match=r"inputs/b-bad\.spacy is not a readable spaCy DocBin"):
        next(docs)


def test_distill_corpus_without_docs_is_an_error_not_an_empty_training_set(bad_files):
    reader = create_distill_corpus_reader(bad_files / "no-docs.spacy")
    with pytest.raises(ValueError, match=r"No docs in .*no-docs\.spacy: the distillation corpus is empty"):
        list(reader(spacy.blank("en")))
    assert list(create_distill_corpus_reader(None)(spacy.blank("en"))) == []  # no path: nothing, by design


TAGS_PER = ["O", "B-PER", "I-PER", "L-PER", "U-PER"]
TAGS_LOC = ["O", "B-LOC", "I-LOC", "L-LOC", "U-LOC"]


def _annotated(nlp, text, tags):
    doc = nlp.make_doc(text)
    set_teacher_logits(doc, numpy.zeros((len(doc), len(tags))), tags)
    return doc


def test_docs_annotated_over_different_label_sets_are_named(tmp_path):
    nlp = spacy.blank("en")
    folder = tmp_path / "distill"
    folder.mkdir()
    DocBin(store_user_data=True, docs=[_annotated(nlp, "Alice visited Paris", TAGS_PER)]).to_disk(folder / "a.spacy")
    docs = [_annotated(nlp, "Bob left", TAGS_PER), _annotated(nlp, "Carol saw Lima", TAGS_LOC)]
    DocBin(store_user_data=True, docs=docs).to_disk(folder / "b.spacy")
    reader = create_distill_corpus_reader(folder)
    with pytest.raises(
        ValueError,
        match=(
            r"b\.spacy, doc 1: teacher distributions over labels \['LOC'\], "
            r"but .*a\.spacy, doc 0 has labels \['PER'\]"
        ),
    ):
        list(reader(nlp))


def test_stored_tags_that_are_not_biluo_are_named(tmp_path):
    nlp = spacy.blank("en")
    docs = [_annotated(nlp, "Alice visited Paris", TAGS_PER), _annotated(nlp, "Bob left", ["O", "PER", "LOC"])]
    DocBin(store_user_data=True, docs=docs).to_disk(tmp_path / "tags.spacy")
    with pytest.raises(ValueError, match=r"tags\.spacy, doc 1: Not a BILUO tag list"):
        list(create_distill_corpus_reader(tmp_path / "tags.spacy")(nlp))


def test_same_teacher_labels_in_another_order_are_reordered_not_rejected():
    nlp = student_nlp()
    both = ["O", "B-LOC", "I-LOC", "L-LOC", "U-LOC", "B-PER", "I-PER", "L-PER", "U-PER"]
    swapped = ["O"] + both[5:] + both[1:5]
    refs = [_annotated(nlp, "Alice visited Paris", both), _annotated(nlp, "Bob left Lima", swapped)]
    examples = [Example(nlp.make_doc(r.text), r) for r in refs]
    nlp.initialize(lambda: examples)
    assert set(nlp.get_pipe("ner").labels) == {"LOC", "PER"}
    losses = nlp.update(examples)
    assert numpy.isfinite(losses["ner"])


# --------------------------------------------------------------------------------------------
# Config errors and determinism through the real `spacy train` path

TRAIN_OVERRIDES = {
    **TINY_STUDENT,
    "training.max_epochs": 3,
    "training.eval_frequency": 1000,
    "training.batcher.size.start": 16,
    "training.batcher.size.stop": 16,
    "training.logger.progress_bar": False,
}


def test_spacy_train_without_any_entity_label_says_so(toy_corpus, tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=toy_docs(nlp.vocab, 10, annotated=False)).to_disk(tmp_path / "unlabeled.spacy")
    overrides = {
        **TRAIN_OVERRIDES,
        "paths.train": str(tmp_path / "unlabeled.spacy"),
        "paths.dev": str(toy_corpus["dev"]),
    }
    with pytest.raises(ValueError, match=r"'ner' has no entity labels: the training examples carry no entities"):
        spacy_train(ROOT / "configs" / "student.cfg", tmp_path / "out", overrides=overrides)
    assert not (tmp_path / "out" / "model-last").exists()


def test_training_twice_with_one_seed_gives_identical_weights_and_predictions(toy_corpus, tmp_path):
    overrides = {**TRAIN_OVERRIDES, "paths.train": str(toy_corpus["train"]), "paths.dev": str(toy_corpus["dev"])}
    runs = []
    for run in ("a", "b"):
        spacy_train(ROOT / "configs" / "student.cfg", tmp_path / run, overrides=overrides)
        runs.append(spacy.load(tmp_path / run / "model-last"))
    a, b = runs
    params_a = _params(a.get_pipe("ner").model)
    params_b = _params(b.get_pipe("ner").model)
    assert params_a.keys() == params_b.keys() and len(params_a) > 5
    for key in params_a:
        numpy.testing.assert_array_equal(params_a[key], params_b[key], err_msg=str(key))
    assert a.get_pipe("ner").model.to_bytes() == b.get_pipe("ner").model.to_bytes()
    texts = pipe_texts(100)
    assert [ents(d) for d in a.pipe(texts)] == [ents(d) for d in b.pipe(texts)]
    scores = [r.get_pipe("ner").predict([r.make_doc(SENTENCE)])[0] for r in runs]
    numpy.testing.assert_array_equal(*scores)
    # A different seed really changes the weights (so the equality above is not vacuous).
    spacy_train(ROOT / "configs" / "student.cfg", tmp_path / "c", overrides={**overrides, "system.seed": 1})
    params_c = _params(spacy.load(tmp_path / "c" / "model-last").get_pipe("ner").model)
    assert any(not numpy.array_equal(params_a[k], params_c[k]) for k in params_a)


def _params(model):
    out = {}
    for i, node in enumerate(model.walk()):
        for name in node.param_names:
            if node.has_param(name):
                out[(i, node.name, name)] = numpy.asarray(node.get_param(name)).copy()
    return out
