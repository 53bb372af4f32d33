"""Size and speed of trained pipelines, and the teacher-vs-student summary table of `project run all`."""

import json
import statistics
import time
from pathlib import Path
from typing import Collection, Dict, List, Optional, Sequence

import spacy
from spacy.language import Language
from spacy.tokens import DocBin


def count_parameters(nlp: Language, components: Optional[Collection[str]] = None) -> int:
    """Number of weights in the pipeline's models (torch weights of transformer shims included).

    components (Optional[Collection[str]]): Count only these components (default: all).
    """
    total = 0
    seen = set()
    for name, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if not hasattr(model, "walk") or (components is not None and name not in components):
            continue
        for node in model.walk():
            if id(node) in seen:
                continue
            seen.add(id(node))
            for param in node.param_names:
                if node.has_param(param):
                    total += int(node.get_param(param).size)
            for shim in node.shims:
                torch_model = getattr(shim, "_model", None)
                if torch_model is not None and id(torch_model) not in seen:
                    seen.add(id(torch_model))
                    total += sum(p.numel() for p in torch_model.parameters())
    return total


def disk_size(path: Path) -> int:
    """Bytes used by a file or a folder's files."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def words_per_second(
    nlp: Language, texts: Sequence[str], *, batch_size: int = 64, repeats: int = 3, disable: Sequence[str] = ()
) -> float:
    """Median words/s of ``nlp.pipe`` over ``texts`` after one warm-up pass."""
    for _ in nlp.pipe(texts[:batch_size], batch_size=batch_size, disable=list(disable)):
        pass
    n_words = 0
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size, disable=list(disable)))
        timings.append(time.perf_counter() - start)
    return n_words / statistics.median(timings)


def summarize(
    models: Dict[str, Path], scores: Dict[str, Path], test_data: Path, output: Path, *, repeats: int = 3
) -> List[dict]:
    """Measure each pipeline on the test texts and write a markdown table (and JSON beside it)."""
    texts = [doc.text for doc in DocBin().from_disk(test_data).get_docs(spacy.blank("en").vocab)]
    rows = []
    for name, path in models.items():
        nlp = spacy.load(path)
        test_scores = json.loads(Path(scores[name]).read_text())
        rows.append(
            {
                "system": name,
                "ents_f": test_scores["ents_f"],
                "ents_p": test_scores["ents_p"],
                "ents_r": test_scores["ents_r"],
                "parameters": count_parameters(nlp),
                "disk_bytes": disk_size(path),
                "words_per_second": words_per_second(nlp, texts, repeats=repeats),
            }
        )
    table = format_table(rows, test_data=test_data, n_texts=len(texts))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(table + "\n")
    output.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    print(table)
    return rows


def format_table(rows: List[dict], *, test_data: Path, n_texts: int) -> str:
    lines = [
        f"Test set: {test_data} ({n_texts} docs). Speed: nlp.pipe, batch 64, median of repeats, this machine.",
        "",
        "| system | F1 | P | R | parameters | size on disk | words/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['system']} | {100 * row['ents_f']:.1f} | {100 * row['ents_p']:.1f} | {100 * row['ents_r']:.1f} "
            f"| {row['parameters'] / 1e6:.2f}M | {row['disk_bytes'] / 1e6:.1f} MB | {row['words_per_second']:,.0f} |"
        )
    if len(rows) == 2 and rows[1]["parameters"]:
        teacher, student = rows
        lines += [
            "",
            f"{student['system']} vs {teacher['system']}: {teacher['parameters'] / student['parameters']:.1f}x fewer "
            f"parameters, {student['words_per_second'] / teacher['words_per_second']:.1f}x faster, "
            f"F1 {100 * (student['ents_f'] - teacher['ents_f']):+.1f} points.",
        ]
    return "\n".join(lines)
