"""Reliability of the teacher and the annotate step: long docs are read whole through the strided
span getter; annotate killed midway (SIGKILL) loses no finished work, leaves nothing that looks
complete, and a rerun gives exactly what a clean run gives."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest
import spacy
from spacy.tokens import DocBin

import spacy_compact_ner.tools.annotate as annotate_module
from spacy_compact_ner.store import get_teacher_logits, set_teacher_logits
from spacy_compact_ner.tools.annotate import annotate, teacher_logits
from tests.fixtures import ROOT, toy_sentences
from tests.util import ents, interrupt_annotate

SENTENCE = "Carol Bobson saw Tokyo for Acme Corp ."
SENTENCE_ENTS = [(0, 2, "PER"), (3, 4, "LOC"), (5, 7, "ORG")]


@pytest.fixture(scope="module")
def teacher(trained_teacher):
    return spacy.load(trained_teacher)


def test_a_doc_far_longer_than_the_window_is_read_whole(teacher):
    span_getter = teacher.config["components"]["transformer"]["model"]["get_spans"]
    assert span_getter["@span_getters"] == "spacy-compact-ner.bounded_strided_spans.v1"
    assert (span_getter["window"], span_getter["stride"], span_getter["max_chars"]) == (128, 96, 500)
    n = 375
    text = " ".join([SENTENCE] * n)  # 3,000 tokens, 14,600 characters: many windows
    docs = list(teacher.pipe([text], disable=["ner"]))
    doc = docs[0]
    assert len(doc) == 8 * n == 3000
    trf = doc._.trf_data
    windows = teacher.get_pipe("transformer").model.attrs["get_spans"]([doc])[0]
    assert len(windows) > 30 and windows[-1].end == len(doc)
    assert len(trf.wordpieces.input_ids) == len(windows)  # one row of wordpieces per window
    lengths = numpy.asarray(trf.align.lengths)
    assert lengths.shape == (3000,) and lengths.min() >= 1  # every token reaches the transformer
    ner = teacher.get_pipe("ner")
    (logits,) = ner.predict(docs)
    assert logits.shape == (len(doc), len(ner.tags)) == (3000, 13)
    assert numpy.isfinite(logits).all()
    tagged = teacher(text)
    expected = [(8 * i + s, 8 * i + e, label) for i in range(n) for s, e, label in SENTENCE_ENTS]
    late = [e for e in ents(tagged) if e[0] >= 8 * 300]  # the last 75 sentences, far past window 1
    assert len(late) == 3 * 75 and late == [e for e in expected if e[0] >= 8 * 300]
    assert ents(tagged) == expected


def test_a_window_of_wordpiece_heavy_tokens_is_not_truncated(teacher):
    # configs/teacher.cfg bounds windows by characters too (spacy-compact-ner.bounded_strided_spans.v1),
    # so a window of URL-like tokens stays within the encoder's 512 positions.
    url = "https://example.com/a/b/c/d/e/f/g/h/i/j/k/l"  # one spaCy token, about 25 wordpieces
    text = f"{SENTENCE} {url} " * 40
    docs = list(teacher.pipe([text], disable=["ner"]))
    assert numpy.asarray(docs[0]._.trf_data.align.lengths).min() >= 1
    assert ents(teacher(text))[:3] == SENTENCE_ENTS


def test_odd_text_through_the_teacher(teacher):
    texts = ["", " ", "\x00", "😀", "e\u0301\u0301", "https://example.com/" + "a" * 9980, f"\x00 😀 {SENTENCE} שלום"]
    ner = teacher.get_pipe("ner")
    # An empty doc in a batch with others: the transformer listener gives it a (0, 0) array, which
    # crashed the concatenation with the case features before the component skipped empty docs.
    assert ents(list(teacher.pipe(["", SENTENCE]))[1]) == SENTENCE_ENTS
    docs = list(teacher.pipe(texts, batch_size=3))
    for text, doc in zip(texts, docs):
        assert doc.text == text
        for ent in doc.ents:
            assert ent.label_ in ner.labels and ent.text.strip("\x00 ")
    assert docs[0].ents == () and docs[1].ents == () and docs[2].ents == ()
    last = docs[-1]
    start = [i for i in range(len(last)) if last[i : i + 8].text == SENTENCE][0]
    assert [(s - start, e - start, label) for s, e, label in ents(last) if start <= s < start + 8] == SENTENCE_ENTS


def test_annotate_stores_distributions_for_empty_and_odd_docs(teacher):
    texts = ["", SENTENCE, " ", "\x00", "", "😀 e\u0301"]
    docs = [teacher.make_doc(t) for t in texts]
    logits = teacher_logits(teacher, "ner", docs, batch_size=4)
    n_tags = len(teacher.get_pipe("ner").tags)
    assert [x.shape for x in logits] == [(len(d), n_tags) for d in docs]
    for doc, x in zip(docs, logits):
        set_teacher_logits(doc, x, teacher.get_pipe("ner").tags)
        assert get_teacher_logits(doc)[0].shape == (len(doc), n_tags)


# --------------------------------------------------------------------------------------------
# The annotate step, killed


def _read(path):
    docs = list(DocBin(store_user_data=True).from_disk(path).get_docs(spacy.blank("en").vocab))
    return [d.text for d in docs], [get_teacher_logits(d)[0] for d in docs]


def _assert_same_output(a, b):
    texts_a, logits_a = _read(a)
    texts_b, logits_b = _read(b)
    assert texts_a == texts_b
    assert len(logits_a) == len(logits_b)
    for x, y in zip(logits_a, logits_b):
        numpy.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    path = tmp_path_factory.mktemp("annotate_in") / "in.txt"
    texts = [" ".join(words) for words, _ in toy_sentences(400, seed=21)]
    path.write_text("\n".join(texts) + "\n", encoding="utf8")
    return path


@pytest.fixture(scope="module")
def clean_run(trained_teacher, lines, tmp_path_factory):
    out = tmp_path_factory.mktemp("annotate_clean") / "clean.spacy"
    stats = annotate(trained_teacher, [lines], out, chunk_size=8, batch_size=8, show_progress=False)
    assert stats.docs == 400 and stats.chunks_reused == 0
    return out


def test_annotate_killed_midway_then_rerun_equals_a_clean_run(trained_teacher, lines, clean_run, tmp_path):
    out = tmp_path / "out.spacy"
    parts = tmp_path / "out.spacy.parts"
    cmd = [
        sys.executable,
        "-m",
        "spacy_compact_ner",
        "annotate",
        str(trained_teacher),
        str(lines),
        str(out),
        "--chunk-size",
        "8",
        "--batch-size",
        "8",
    ]
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would block the child
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    try:
        while not list(parts.glob("part-*.spacy")):
            assert proc.poll() is None, f"annotate exited ({proc.returncode}) before writing a chunk: {log.read_text()}"
            assert time.monotonic() < deadline, "annotate wrote no chunk within 120 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing that looks complete
    finished = sorted(p.name for p in parts.glob("part-*.spacy"))
    assert 1 <= len(finished) < 50, finished  # killed midway: 400 docs make 50 chunks
    for part in finished:  # every part that looks finished is a whole DocBin
        assert len(DocBin(store_user_data=True).from_disk(parts / part)) == 8
    # A kill during a write leaves at most a .tmp file: plant a truncated one for the next chunk,
    # and one beside a finished part. Neither may be taken for a finished part.
    next_id = len(finished)
    data = (parts / finished[0]).read_bytes()
    (parts / f"part-{next_id:06d}.spacy.tmp").write_bytes(data[: len(data) // 3])
    (parts / f"part-{next_id + 1:06d}.spacy.tmp").write_bytes(data)  # complete bytes, but never renamed
    stats = annotate(trained_teacher, [lines], out, chunk_size=8, batch_size=8, show_progress=False)
    assert stats.chunks_reused == len(finished) and stats.docs == 400
    assert not parts.exists()
    _assert_same_output(out, clean_run)


def test_annotate_rerun_after_a_kill_while_writing_the_manifest(trained_teacher, tmp_path):
    source = tmp_path / "in.txt"
    texts = [" ".join(w) for w, _ in toy_sentences(20, seed=4)]
    source.write_text("\n".join(texts) + "\n", encoding="utf8")
    out = tmp_path / "out.spacy"
    parts = tmp_path / "out.spacy.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text('{"teacher": "/some/where", "inp')  # cut short by a kill
    (parts / "part-000000.spacy").write_bytes(b"not a chunk of this run")
    stats = annotate(trained_teacher, [source], out, chunk_size=8, batch_size=8, show_progress=False)
    assert stats.chunks_reused == 0 and stats.docs == 20
    assert _read(out)[0] == texts and not parts.exists()


def test_annotate_does_not_reuse_chunks_of_an_edited_input(trained_teacher, tmp_path, monkeypatch):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(" ".join(w) for w, _ in toy_sentences(24, seed=5)) + "\n", encoding="utf8")
    out = tmp_path / "out.spacy"
    interrupt_annotate(monkeypatch, trained_teacher, [source], out, chunk_size=8, batch_size=8, show_progress=False)
    assert len(list((tmp_path / "out.spacy.parts").glob("part-*.spacy"))) == 1
    # The same path, other content: the finished chunk is stale and must not be reused.
    edited = [" ".join(w) for w, _ in toy_sentences(24, seed=6)]
    source.write_text("\n".join(edited) + "\n", encoding="utf8")
    stats = annotate(trained_teacher, [source], out, chunk_size=8, batch_size=8, show_progress=False)
    assert stats.chunks_reused == 0
    assert _read(out)[0] == edited
    manifest = json.loads((tmp_path / "out.spacy.json").read_text())
    assert len(manifest["fingerprint"]) == 64


@pytest.mark.parametrize(
    "name,content",
    [("empty.txt", b""), ("blank.txt", b"\n  \n\t\n"), ("none.spacy", DocBin().to_bytes())],
)
def test_annotate_empty_input_is_a_clear_error_and_leaves_nothing(trained_teacher, tmp_path, name, content):
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "out.spacy"
    with pytest.raises(ValueError, match=rf"No docs to annotate in \[.*{name}'\] \(shard 0/1\): the inputs are empty"):
        annotate(trained_teacher, [source], out, show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_annotate_input_errors_name_the_file(trained_teacher, tmp_path, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the teacher was loaded before the inputs were checked")

    monkeypatch.setattr(annotate_module.spacy, "load", no_load)
    with pytest.raises(FileNotFoundError, match=r"Annotate input not found: .*missing\.txt"):
        annotate(trained_teacher, [tmp_path / "missing.txt"], tmp_path / "o.spacy", show_progress=False)
    monkeypatch.undo()
    (tmp_path / "cut.spacy").write_bytes(DocBin(docs=[spacy.blank("en")("a b")]).to_bytes()[:-7])
    with pytest.raises(ValueError, match=r"cut\.spacy is not a readable spaCy DocBin \(truncated"):
        annotate(trained_teacher, [tmp_path / "cut.spacy"], tmp_path / "o.spacy", show_progress=False)
    assert not (tmp_path / "o.spacy").exists()


def test_bounded_windows_cover_every_token_within_both_bounds():
    from spacy_compact_ner.tools.spans import configure_bounded_strided_spans

    nlp = spacy.blank("en")
    get_spans = configure_bounded_strided_spans(window=4, stride=3, max_chars=12)
    doc = nlp("aa bb cc dd ee ff gg " + "x" * 30 + " hh ii")
    spans = get_spans([doc, nlp("")])
    assert spans[1] == []
    assert [(s.start, s.end) for s in spans[0]] == [(0, 4), (3, 7), (6, 7), (7, 8), (8, 10)]
    for span in spans[0]:
        assert len(span) <= 4 and (len(span.text) <= 12 or len(span) == 1)
    with pytest.raises(ValueError, match="0 < stride <= window"):
        configure_bounded_strided_spans(window=4, stride=5)
