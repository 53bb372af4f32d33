"""Words/s of config variants before training them: each variant is built from the config with its
overrides, initialized on the training docs (weights random, labels, shapes and vectors as in training)
and timed by the speed worker, exactly as `benchmark speed` times a trained pipeline.

Speed does not depend on the weights' values, so this tells, in minutes and before hours of training,
what a smaller or larger student would gain; the variants' dev F1 come from the `variants` command
(same variants file). Results go to one JSON and a markdown table; a run measures every chosen
variant again (timings are cheap, and a stale timing is worse than none). Rows of variants not chosen
(``--only``) are kept from the previous output when it timed the same text, with the same settings,
config and common overrides on the same CPU, and the variant's overrides have not changed; each row
carries the date it was measured.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .common import machine_info, now_iso, write_json, write_text
from .runner import override_strings
from .schema import VARIANT_SPEED_SCHEMA
from .speed import SpeedSettings, code_fingerprint, needs_torch, prepare_texts, run_worker
from .variants import overrides_label


def init_variant_pipeline(
    config: Path, overrides: Dict[str, object], init_data: Path, output: Path, *, n_docs: int = 0
) -> Path:
    """Build ``config`` with ``overrides``, initialize it on the docs of ``init_data`` (a .spacy file:
    labels and shapes come from it; the first ``n_docs`` only if > 0) and save it to ``output``."""
    import spacy
    from spacy.cli._util import parse_config_overrides
    from spacy.training import Corpus
    from spacy.util import load_config

    if not Path(init_data).is_file():
        raise FileNotFoundError(f"initialization data not found: {init_data}")
    # values as `spacy train` reads them on its command line, so a variant means the same in both
    args = [item for key, value in override_strings(overrides).items() for item in (f"--{key}", value)]
    cfg = load_config(Path(config), overrides=parse_config_overrides(args))
    nlp = spacy.util.load_model_from_config(cfg, auto_fill=True, validate=True)
    examples = []
    for example in Corpus(str(init_data))(nlp):
        examples.append(example)
        if 0 < n_docs <= len(examples):
            break
    if not examples:
        raise ValueError(f"{init_data} holds no docs to initialize the pipeline with")
    nlp.initialize(lambda: examples)
    if output.exists():
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    return output


def measure_variant_speed(
    config: Path,
    variants: Sequence,
    *,
    init_data: Path,
    texts: Sequence[Path],
    settings: SpeedSettings,
    work_dir: Path,
    common: Optional[Dict[str, object]] = None,
    python: str = sys.executable,
    log=print,
) -> dict:
    """Time every variant (``variants.Variant``) at each of ``settings.thread_counts``, whole pipeline
    only (no NER-alone mode, no `spacy benchmark speed` pass, no scaling)."""
    settings = replace(
        settings,
        modes=("pipeline",),
        spacy_benchmark=False,
        scaling_words=[],
        scaling_doc_lengths=[],
        numpy_gemm_systems=[],
    )
    work_dir = Path(work_dir)
    text_sets = prepare_texts(list(texts), settings, work_dir, log)
    rows: List[dict] = []
    code = None
    for variant in variants:
        overrides = {**(common or {}), **variant.overrides}
        model = init_variant_pipeline(Path(config), overrides, Path(init_data), work_dir / "models" / variant.name)
        code = code or code_fingerprint(model)
        row = {
            "variant": variant.name,
            "note": variant.note,
            "overrides": variant.override_strings(),
            "threads": {},
            "date": now_iso(),
        }
        for threads in settings.thread_counts:
            log(f"[variant speed] {variant.name}: {text_sets.main_info['n_words']:,} words, {threads} thread(s)")
            run = run_worker(
                model,
                text_sets.main,
                work_dir / "runs" / f"{variant.name}-t{threads}.json",
                threads=threads,
                settings=settings,
                python=python,
                block_torch=not needs_torch(model),
                modes=settings.modes,
                spacy_benchmark=settings.spacy_benchmark,
                repeats=settings.repeats,
            )
            pipeline = run["modes"]["pipeline"]
            row["parameters"] = run["parameters"]["ner"]
            row["vectors"] = run["parameters"]["vectors"]
            row["threads"][str(threads)] = {
                "words_per_second": pipeline["words_per_second"],
                "peak_rss_bytes": pipeline.get("peak_rss_bytes"),
            }
        rows.append(row)
    return {
        "schema": VARIANT_SPEED_SCHEMA,
        "config": str(config),
        "common_overrides": override_strings(common),
        # the package code the pipelines ran: timings of other code are not merged with these
        "code_sha256": code,
        "text": text_sets.main_info,
        "settings": {
            k: v
            for k, v in settings.to_dict().items()
            if k in ("batch_size", "repeats", "min_words", "warmup_docs", "thread_counts")
        },
        "variants": rows,
        "date": now_iso(),
        "machine": machine_info(),
    }


def _protocol(data: dict) -> tuple:
    return (
        data.get("schema"),
        data.get("config"),
        data.get("common_overrides"),
        data.get("code_sha256"),
        (data.get("text") or {}).get("sha256"),
        data.get("settings"),
        (data.get("machine") or {}).get("cpu"),
    )


def merge_previous(data: dict, previous: Optional[dict], variants: Sequence) -> Tuple[List[str], List[str]]:
    """Add to ``data`` the rows of ``previous`` for variants (``variants.Variant``, all of the file) that
    ``data`` did not measure, if both runs timed the same code the same way (config, text, settings,
    CPU); rows follow the file's order.
    RETURNS (Tuple[List[str], List[str]]): The variants whose earlier rows were kept, and dropped."""
    measured = {row["variant"] for row in data["variants"]}
    current = {v.name: v.override_strings() for v in variants}
    same_protocol = previous is not None and _protocol(previous) == _protocol(data)
    kept: Dict[str, dict] = {}
    dropped: List[str] = []
    for row in (previous or {}).get("variants", []):
        name = row.get("variant")
        if name in measured:
            continue
        if same_protocol and current.get(name) == row.get("overrides"):
            kept[name] = {**row, "date": row.get("date") or previous.get("date")}
        else:
            dropped.append(name)
    rows = {**kept, **{row["variant"]: row for row in data["variants"]}}
    data["variants"] = [rows[v.name] for v in variants if v.name in rows]
    return list(kept), dropped


def variant_speed_table(data: dict, dev_f1: Optional[Dict[str, str]] = None) -> str:
    """Markdown: parameters (no vectors), words/s per thread count relative to the first variant, dev F1."""
    threads = [str(t) for t in data["settings"]["thread_counts"]]
    head = [
        "variant",
        "overrides",
        "parameters (no vectors)",
        *[f"words/s {t} thr." for t in threads],
        "x first",
        "peak RSS",
        "dev F1",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    rows = data["variants"]
    base = rows[0]["threads"][threads[0]]["words_per_second"] if rows else None
    for row in rows:
        wps = [row["threads"][t]["words_per_second"] for t in threads]
        rss = row["threads"][threads[0]].get("peak_rss_bytes")
        lines.append(
            "| "
            + " | ".join(
                [
                    row["variant"],
                    overrides_label(row["overrides"]),
                    f"{row['parameters']:,}",
                    *[f"{w:,.0f}" for w in wps],
                    f"{wps[0] / base:.2f}" if base else "-",
                    f"{rss / 2**20:.0f} MB" if rss else "-",
                    (dev_f1 or {}).get(row["variant"], "-"),
                ]
            )
            + " |"
        )
    text = data["text"]
    machine = data["machine"]
    dates = sorted(row.get("date") or data["date"] for row in rows) or [data["date"]]
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    return (
        f"# Variant speed (untrained)\n\nEach variant of `{data['config']}` initialized on the training docs, "
        f"not trained, and timed by the benchmark's speed worker: {text['n_words']:,} words in {text['n_docs']:,} "
        f"docs, batch {data['settings']['batch_size']}, median of {data['settings']['repeats']} passes after a "
        f"warm-up, whole pipeline. Measured {when} on {machine['cpu']} ({machine['cpus']} CPUs). "
        f"Dev F1: mean over the seeds in the variants' metrics folder. Variants that differ only in "
        f"their training data have the same network: their spread is the timing noise.\n\n" + "\n".join(lines) + "\n"
    )


def write_variant_speed(
    data: dict, output_json: Path, output_md: Optional[Path], dev_f1: Optional[Dict[str, str]] = None
) -> None:
    write_json(Path(output_json), data)
    if output_md is not None:
        write_text(Path(output_md), variant_speed_table(data, dev_f1))
