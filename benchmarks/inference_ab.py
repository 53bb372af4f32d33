"""A/B speed of two or more versions of the package code on one trained pipeline, interleaved.

Each version is a folder holding a ``spacy_compact_ner`` package (this worktree, or a git revision
exported with ``git archive``). Every round times each version once, in turn, each in its own process
with its folder first on ``PYTHONPATH`` (1 thread by default; a warm-up pass, then the median of
``--repeats`` passes of ``nlp.pipe``), so that a busy machine slows all versions alike. The report gives
each version's median words/s over the rounds, by CPU time and by wall clock, its ratio to the first
version's median, and the median of the per-round (paired) ratios. Optionally the pipeline is also
measured with its other CPU gemm (``cpu_gemm`` "numpy" <-> "blis": a copy of the pipeline with that one
config value changed).

    python benchmarks/inference_ab.py --model training/student/model-best \\
        --version base=git:HEAD~1 --version new=. --rounds 5 --output ab.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS")


def conll_texts(path: Path, limit: int = 0) -> List[str]:
    """The sentences of a CoNLL file (first column, joined with spaces), ``-DOCSTART-`` lines skipped."""
    texts: List[str] = []
    tokens: List[str] = []
    for line in path.read_text(encoding="utf8").splitlines():
        line = line.strip()
        if not line or line.startswith("-DOCSTART-"):
            if tokens:
                texts.append(" ".join(tokens))
                tokens = []
            continue
        tokens.append(line.split()[0])
    if tokens:
        texts.append(" ".join(tokens))
    return texts[:limit] if limit else texts


def export_version(spec: str, work: Path) -> Path:
    """The folder of a version: a path, or ``git:REV`` exported (package and benchmarks) into ``work``."""
    if not spec.startswith("git:"):
        folder = Path(spec).resolve()
        if not (folder / "spacy_compact_ner").is_dir():
            raise SystemExit(f"{folder} holds no spacy_compact_ner package")
        return folder
    rev = spec[4:]
    target = work / re.sub(r"[^A-Za-z0-9_.-]", "_", rev)
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "spacy_compact_ner"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def gemm_variant(model: Path, work: Path) -> Tuple[str, Path]:
    """A copy of the pipeline with the other ``cpu_gemm`` value, and that value."""
    config = (model / "config.cfg").read_text(encoding="utf8")
    found = re.search(r'cpu_gemm = "(numpy|blis)"', config)
    if not found:
        raise SystemExit(f"{model}/config.cfg sets no cpu_gemm")
    other = "blis" if found.group(1) == "numpy" else "numpy"
    target = work / f"model-{other}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(model, target)
    (target / "config.cfg").write_text(config.replace(found.group(0), f'cpu_gemm = "{other}"'), encoding="utf8")
    return other, target


def run_once(folder: Path, model: Path, texts: Path, args: argparse.Namespace, out: Path) -> dict:
    """One timing run of ``model`` with the package in ``folder``, in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.update({var: str(args.threads) for var in THREAD_VARS})
    env["PYTHONPATH"] = str(folder)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", str(model), "--texts", str(texts)]
    cmd += ["--repeats", str(args.repeats), "--batch-size", str(args.batch_size), "--output", str(out)]
    cmd += ["--version", "_", "--mode", args.mode]
    subprocess.run(cmd, env=env, check=True, cwd=folder)
    return json.loads(out.read_text())


def worker(args: argparse.Namespace) -> None:
    """Time ``nlp.pipe`` (mode "pipeline") or the NER component alone on pre-made docs (mode "ner"):
    wall-clock and CPU (process) seconds of each pass, after one warm-up pass. With one thread the CPU
    time is the more stable measure on a shared machine: it leaves out the time other jobs hold the core."""
    import gc
    import time

    import spacy

    nlp = spacy.load(args.model)
    texts = [json.loads(line) for line in args.texts.read_text(encoding="utf8").splitlines() if line.strip()]
    ner = next(name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == "compact_ner")

    def one_pass() -> Tuple[float, float, int]:
        docs = None if args.mode == "pipeline" else [nlp.make_doc(t) for t in texts]
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        if docs is None:
            n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=args.batch_size))
        else:
            n_words = sum(len(doc) for doc in nlp.get_pipe(ner).pipe(docs, batch_size=args.batch_size))
        return time.perf_counter() - wall, time.process_time() - cpu, n_words

    one_pass()
    passes = [one_pass() for _ in range(args.repeats)]
    words = passes[0][2]
    wall = statistics.median(p[0] for p in passes)
    cpu = statistics.median(p[1] for p in passes)
    args.output.write_text(
        json.dumps({"words": words, "wall_words_per_second": words / wall, "cpu_words_per_second": words / cpu})
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--version", action="append", required=True, help="NAME=PATH or NAME=git:REV")
    parser.add_argument("--texts", type=Path, help="JSONL of texts; default: --conll sentences")
    parser.add_argument("--conll", type=Path, default=Path("/work/main/assets/conll03/test.txt"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per run (median taken)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--mode", default="pipeline", choices=["pipeline", "ner"])
    parser.add_argument("--other-gemm", action="store_true", help="also measure with the other cpu_gemm")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return

    work = Path(tempfile.mkdtemp(prefix="inference_ab_"))
    versions: Dict[str, Path] = {}
    for spec in args.version:
        name, _, where = spec.partition("=")
        versions[name] = export_version(where, work)
    texts = args.texts
    if texts is None:
        texts = work / "texts.jsonl"
        texts.write_text("".join(json.dumps(t) + "\n" for t in conll_texts(args.conll)), encoding="utf8")
    models = {"": args.model.resolve()}
    if args.other_gemm:
        other, path = gemm_variant(args.model.resolve(), work)
        models[f"/{other}"] = path
    runs: Dict[str, Dict[str, List[float]]] = {"cpu": {}, "wall": {}}
    words = None
    for round_index in range(args.rounds):
        for model_suffix, model in models.items():
            for name, folder in versions.items():
                key = name + model_suffix
                result = run_once(folder, model, texts, args, work / "out.json")
                for measure in runs:
                    runs[measure].setdefault(key, []).append(result[f"{measure}_words_per_second"])
                words = result["words"]
                print(
                    f"round {round_index + 1} {key}: {result['cpu_words_per_second']:,.0f} words/s CPU time, "
                    f"{result['wall_words_per_second']:,.0f} wall",
                    flush=True,
                )
    report = {
        "model": str(args.model),
        "versions": {name: str(folder) for name, folder in versions.items()},
        "mode": args.mode,
        "threads": args.threads,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "words": words,
        "runs_words_per_second": runs,
        "median_words_per_second": {},
        "ratio_of_medians": {},
        "median_paired_ratio": {},
    }
    first = next(iter(versions))
    for measure, measure_runs in runs.items():
        for model_suffix in models:
            base = measure_runs[first + model_suffix]
            for name in versions:
                key = name + model_suffix
                values = measure_runs[key]
                paired = [b / a for a, b in zip(base, values)]
                report["median_words_per_second"].setdefault(measure, {})[key] = statistics.median(values)
                report["ratio_of_medians"].setdefault(measure, {})[key] = statistics.median(values) / statistics.median(
                    base
                )
                report["median_paired_ratio"].setdefault(measure, {})[key] = statistics.median(paired)
    args.output.write_text(json.dumps(report, indent=2))
    for measure in runs:
        for key, value in report["median_words_per_second"][measure].items():
            print(
                f"{measure} {key}: median {value:,.0f} words/s, {report['ratio_of_medians'][measure][key]:.3f}x the "
                f"first's median, median paired ratio {report['median_paired_ratio'][measure][key]:.3f}"
            )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
