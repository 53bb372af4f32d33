"""Helpers shared by the tests."""

import random
from typing import List

import spacy
from spacy.language import Language
from spacy.training import Example
from spacy.util import load_config

from tests.fixtures import ROOT, toy_docs

# The component's own tests run without static vectors (tests/test_vectors.py covers them).
TINY_STUDENT = {
    "components.ner.model.tok2vec.include_static_vectors": False,
    "components.ner.model.tok2vec.width": 32,
    "components.ner.model.tok2vec.rows": [500, 200, 200, 100],
    "components.ner.model.tok2vec.n_iter": 2,
}


def student_nlp(**overrides) -> Language:
    """A blank student pipeline from configs/student.cfg with tiny sizes."""
    config = load_config(ROOT / "configs" / "student.cfg", overrides={**TINY_STUDENT, **overrides})
    return spacy.util.load_model_from_config(config, auto_fill=True, validate=True)


def toy_examples(nlp: Language, n: int = 30, seed: int = 0) -> List[Example]:
    return [Example(nlp.make_doc(d.text), d) for d in toy_docs(nlp.vocab, n, seed=seed)]


def train(nlp: Language, examples: List[Example], steps: int = 40, seed: int = 0, drop: float = 0.0) -> Language:
    """Initialize and update ``nlp`` on ``examples`` in mini-batches of 8."""
    random.seed(seed)
    fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        random.shuffle(examples)
        for i in range(0, len(examples), 8):
            nlp.update(examples[i : i + 8], sgd=optimizer, drop=drop)
    return nlp


def fix_random_seed(seed: int) -> None:
    spacy.util.fix_random_seed(seed)


def ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def interrupt_annotate(monkeypatch, *args, **kwargs) -> None:
    """Run ``annotate(*args, **kwargs)`` and interrupt it as the teacher starts its second chunk."""
    import pytest

    import spacy_compact_ner.tools.annotate as annotate_module

    real = annotate_module.teacher_logits
    calls = {"n": 0}

    def crash_on_second_chunk(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(annotate_module, "teacher_logits", crash_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        annotate_module.annotate(*args, **kwargs)
    monkeypatch.setattr(annotate_module, "teacher_logits", real)
