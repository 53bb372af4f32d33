"""Per-doc entity counts on the test set, and paired bootstrap confidence intervals of F1 differences.

`spacy evaluate` gives a system's F1 over the whole test set; a claimed difference between two systems also
needs to know how much of it the test sample alone could move. Each cell therefore records, per test doc,
the (true positive, false positive, false negative) entity counts of its system (`example_counts`:
the counting of spaCy's NER scorer, doc by doc; their sum reproduces `spacy evaluate`'s F1, which
`evaluate_doc_counts` checks). `paired_bootstrap` resamples the test docs,
the same resample for both systems and every seed (they share one test set), and gives the interval of
the mean over seeds of the F1 difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy

Counts = List[List[int]]
BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


def example_counts(example) -> List[int]:
    """[tp, fp, fn] of one Example, counted as spaCy's NER scorer (`spacy.scorer.get_ner_prf`) counts: a
    predicted entity is mapped onto the reference tokens through the example's alignment; one that lands on
    tokens without entity annotation counts neither way."""
    reference = example.reference
    if not reference.has_annotation("ENT_IOB"):
        return [0, 0, 0]
    golds = {(ent.label_, ent.start, ent.end) for ent in reference.ents}
    x2y = example.alignment.x2y
    tp = fp = 0
    for ent in example.predicted.ents:
        indices = x2y[ent.start : ent.end]
        if len(indices) and all(token.ent_iob != 0 for token in reference[indices[0] : indices[-1] + 1]):
            key = (ent.label_, int(indices[0]), int(indices[-1]) + 1)
            if key in golds:
                tp += 1
                golds.remove(key)
            else:
                fp += 1
    return [tp, fp, len(golds)]


def encode_counts(counts: Counts) -> List[str]:
    """How result files store per-doc counts: one "tp fp fn" string per doc (compact, one line each)."""
    return [" ".join(map(str, c)) for c in counts]


def decode_counts(stored: Sequence[str]) -> Counts:
    return [[int(n) for n in s.split()] for s in stored]


def f1(counts: numpy.ndarray) -> numpy.ndarray:
    """Micro F1 of counts summed over the second-to-last axis ([..., docs, 3] -> [...])."""
    tp, fp, fn = numpy.moveaxis(counts.sum(axis=-2), -1, 0).astype(float)
    denominator = 2 * tp + fp + fn
    return numpy.divide(2 * tp, denominator, out=numpy.zeros_like(tp), where=denominator > 0)


def evaluate_doc_counts(model: Path, data: Path, output: Path, *, expected_f: float | None = None) -> dict:
    """Tag ``data`` (a .spacy file) with ``model`` as `spacy evaluate` does (each reference doc's text
    through the whole pipeline) and write the per-doc counts; with ``expected_f``, check the counts
    reproduce it."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    nlp = spacy.load(model)
    reference = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    predicted = nlp.pipe(doc.text for doc in reference)
    counts = [example_counts(Example(pred, gold)) for pred, gold in zip(predicted, reference, strict=True)]
    ents_f = float(f1(numpy.asarray(counts)))
    if expected_f is not None and abs(ents_f - expected_f) > 1e-6:
        raise ValueError(
            f"per-doc counts of {model} on {data} give F1 {ents_f:.6f}, spacy evaluate gave {expected_f:.6f}: "
            "the two do not count the same entities"
        )
    result = {"model": str(model), "data": str(data), "ents_f": ents_f, "counts": counts}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(result), encoding="utf8")
    return result


def paired_bootstrap(
    ours: Sequence[Counts],
    theirs: Sequence[Counts],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Dict[str, object]:
    """Interval of the mean over seeds of F1(ours) - F1(theirs), in F1 points, by resampling test docs.

    ours, theirs: per seed (paired by position), the per-doc counts of one system on the shared test set.
    RETURNS: ``difference`` (the measured mean), ``low`` and ``high`` (the percentile interval),
    ``per_seed`` (the measured difference of each seed), ``samples``, ``confidence``.
    """
    a, b = numpy.asarray(ours, dtype=numpy.int64), numpy.asarray(theirs, dtype=numpy.int64)
    if a.ndim != 3 or a.shape != b.shape or a.shape[0] == 0 or a.shape[2] != 3:
        raise ValueError(f"need per-seed per-doc [tp, fp, fn] counts of the same shape, got {a.shape} and {b.shape}")
    per_seed = 100 * (f1(a) - f1(b))
    rng = numpy.random.default_rng(seed)
    n_docs = a.shape[1]
    diffs = numpy.empty(samples)
    for i in range(samples):
        index = rng.integers(0, n_docs, n_docs)
        diffs[i] = 100 * (f1(a[:, index]) - f1(b[:, index])).mean()
    tail = (1 - confidence) / 2
    low, high = numpy.quantile(diffs, [tail, 1 - tail])
    return {
        "difference": float(per_seed.mean()),
        "low": float(low),
        "high": float(high),
        "per_seed": [float(d) for d in per_seed],
        "samples": samples,
        "confidence": confidence,
    }


def backfill_doc_counts(metrics_dir: Path, *, datasets: Sequence[str] = (), log=print) -> tuple:
    """Add ``test_doc_counts`` to the result files under ``metrics_dir`` that lack them, by tagging their
    test file with their saved model (the cell's ``model``), if both are still there and the test file is
    the one the result was scored on (same sha256). RETURNS (added, skipped)."""
    from spacy_compact_ner.tools.assets import sha256_file

    from .common import result_files, write_json

    added = skipped = 0
    for path, cell in result_files(metrics_dir, datasets):
        if "test_doc_counts" in cell or "scores" not in cell:
            continue
        model = Path(cell["model"])
        test = model.parent.parent / "corpus" / "test.spacy"
        if not model.is_dir() or not test.is_file() or sha256_file(test) != cell.get("test_sha256"):
            log(f"[doc-counts] {path}: model or its test file missing or changed, skipped")
            skipped += 1
            continue
        output = model.parent / "test_scores_doc_counts.json"
        result = evaluate_doc_counts(model, test, output, expected_f=cell["scores"]["ents_f"])
        cell["test_doc_counts"] = encode_counts(result["counts"])
        write_json(path, cell)
        log(f"[doc-counts] {path}: {len(result['counts'])} docs")
        added += 1
    return added, skipped
