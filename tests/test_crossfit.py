"""Cross-fitted annotation: every labeled doc is annotated by the teacher that did not train on it, the
unlabeled docs by the mean of the fold teachers; folds are seeded and teachers are reused on a rerun."""

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_compact_ner.store import get_teacher_logits
from spacy_compact_ner.tools.annotate import ensemble_logits, find_ner_component, teacher_logits
from spacy_compact_ner.tools.cli import app
from spacy_compact_ner.tools.crossfit import crossfit_annotate, fold_ids
from tests.fixtures import ROOT, TEACHER_OVERRIDES, toy_docs


def test_folds_are_seeded_and_balanced():
    folds = fold_ids(11, 3, seed=4)
    assert sorted(numpy.bincount(folds).tolist()) == [3, 4, 4]
    numpy.testing.assert_array_equal(folds, fold_ids(11, 3, seed=4))
    assert not numpy.array_equal(folds, fold_ids(11, 3, seed=5))
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_ids(11, 1, seed=0)
    with pytest.raises(ValueError, match="3 labeled docs cannot be split into 4 folds"):
        fold_ids(3, 4, seed=0)


@pytest.fixture(scope="module")
def crossfit_run(tiny_bert, toy_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("crossfit")
    unlabeled = root / "unlabeled.spacy"
    DocBin(docs=toy_docs(spacy.blank("en").vocab, 6, seed=9, annotated=False)).to_disk(unlabeled)
    overrides = {"paths.teacher_encoder": str(tiny_bert), **TEACHER_OVERRIDES, "training.eval_frequency": 5}
    kwargs = dict(
        config=ROOT / "configs" / "teacher.cfg",
        dev=toy_corpus["dev"],
        unlabeled=[unlabeled],
        folds=2,
        seed=0,
        work_dir=root / "work",
        overrides=overrides,
        log=lambda line: None,
    )
    stats = crossfit_annotate(toy_corpus["train"], root / "distill.spacy", **kwargs)
    return root, stats, kwargs


def test_each_labeled_doc_is_annotated_by_the_teacher_that_held_it_out(crossfit_run, toy_corpus):
    root, stats, _ = crossfit_run
    assert [(f.train_docs, f.heldout_docs, f.reused) for f in stats.folds] == [(20, 20, False), (20, 20, False)]
    assert (stats.labeled_docs, stats.unlabeled_docs) == (40, 6)
    teachers = [spacy.load(f.teacher) for f in stats.folds]
    nlp = teachers[0]
    docs = list(DocBin().from_disk(root / "distill.spacy").get_docs(nlp.vocab))
    gold = {
        d.text: [(e.start, e.end, e.label_) for e in d.ents]
        for d in DocBin().from_disk(toy_corpus["train"]).get_docs(nlp.vocab)
    }
    assert len(docs) == 46 and sum(d.text in gold for d in docs) == 40
    heldout = [
        {d.text for d in DocBin().from_disk(root / "work" / f"fold{i}" / "heldout.spacy").get_docs(nlp.vocab)}
        for i in range(2)
    ]
    assert not heldout[0] & heldout[1] and heldout[0] | heldout[1] == set(gold)
    for doc in docs:
        stored, _ = get_teacher_logits(doc)
        per_teacher = [teacher_logits(t, find_ner_component(t), [doc], 8)[0] for t in teachers]
        if doc.text in gold:
            assert [(e.start, e.end, e.label_) for e in doc.ents] == gold[doc.text]  # gold kept
            fold = 0 if doc.text in heldout[0] else 1
            numpy.testing.assert_allclose(stored, per_teacher[fold], rtol=2e-3, atol=2e-2)  # stored as float16
            assert not numpy.allclose(stored, per_teacher[1 - fold], rtol=2e-3, atol=2e-2)
        else:
            numpy.testing.assert_allclose(
                stored, ensemble_logits(per_teacher), rtol=2e-3, atol=2e-2
            )  # stored as float16


def test_a_rerun_reuses_the_fold_teachers_and_a_new_split_retrains(crossfit_run, toy_corpus):
    root, _, kwargs = crossfit_run
    again = crossfit_annotate(toy_corpus["train"], root / "again.spacy", **kwargs)
    assert [f.reused for f in again.folds] == [True, True]
    other = crossfit_annotate(toy_corpus["train"], root / "other.spacy", **{**kwargs, "seed": 1})
    assert [f.reused for f in other.folds] == [False, False]


def test_crossfit_command_rejects_bad_input(toy_corpus, tmp_path):
    args = ["crossfit", str(toy_corpus["train"]), str(tmp_path / "out.spacy"), "--dev", str(toy_corpus["dev"])]
    result = CliRunner().invoke(app, [*args, "--folds", "1"])
    assert result.exit_code == 1 and "at least 2 folds" in result.output
    result = CliRunner().invoke(app, [*args[:2], str(tmp_path / "out.txt"), *args[3:]])
    assert result.exit_code == 1 and "must end in .spacy" in result.output
    result = CliRunner().invoke(app, [*args, "--unlabeled", str(tmp_path / "missing.spacy")])
    assert result.exit_code == 1 and "missing.spacy" in result.output
