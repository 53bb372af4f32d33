"""Speed worker: load one pipeline and time it, in its own process (run by `benchmark.speed`).

Standalone on purpose: at start it imports only the standard library (spaCy and
spacy_compact_ner.tools.summary only after torch may have been blocked), so it can also run under another
interpreter, e.g. a venv where only the packaged pipeline and its requirements are installed.

The parent sets the thread environment (OMP/MKL/OPENBLAS/BLIS/RAYON...) before this process starts;
here torch's own thread pools are set with ``torch.set_num_threads`` once torch is loaded. With
``--block-torch`` torch cannot be imported at all (thinc otherwise imports it eagerly), so a pipeline
that does not need it is measured the way it runs when installed without torch.

    python worker.py --model PATH --texts TEXTS.jsonl --threads 1 --output OUT.json
"""

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

TORCH_PACKAGES = ("torch", "transformers", "spacy_transformers", "spacy_curated_transformers")


def block_torch() -> None:
    """Make torch and the packages built on it unimportable, as in an environment without them.

    thinc imports torch eagerly when it is installed, and spaCy loads every registered factory's entry
    point (spacy-transformers' among them) when a pipeline is created, so both are stopped here:
    ``import torch`` raises ImportError and their entry points are not offered to spaCy's registries.
    """
    for name in TORCH_PACKAGES:
        sys.modules[name] = None  # type: ignore[assignment]
    import catalogue

    original = catalogue.Registry._get_entry_points

    def without_torch(self):
        return [ep for ep in original(self) if ep.value.split(":")[0].split(".")[0] not in TORCH_PACKAGES]

    catalogue.Registry._get_entry_points = without_torch


def _status_bytes(field: str):
    """A memory field of /proc/self/status in bytes (None where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the peak RSS (VmHWM) to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes(resettable: bool) -> int:
    if resettable:
        value = _status_bytes("VmHWM")
        if value is not None:
            return value
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def read_texts(path: Path):
    with open(path, encoding="utf8") as f:
        return [json.loads(line) for line in f if line.strip()]


def find_ner(nlp, name=None) -> str:
    if name:
        if name not in nlp.pipe_names:
            raise SystemExit(f"no component {name!r} in {nlp.pipe_names}")
        return name
    for factory in ("compact_ner", "ner"):
        for pipe in nlp.pipe_names:
            if nlp.get_pipe_meta(pipe).factory == factory:
                return pipe
    raise SystemExit(f"no NER component (compact_ner or ner) in {nlp.pipe_names}; pass --component")


def ner_path(nlp, ner: str):
    """The NER component and the components whose output it listens to (tok2vec, transformer)."""
    needed = {ner}
    for name, proc in nlp.pipeline:
        listening = getattr(proc, "listening_components", None) or []
        if ner in listening:
            needed.add(name)
    return [name for name in nlp.pipe_names if name in needed]


def run_pipeline(nlp, texts, batch_size: int) -> int:
    n = 0
    for doc in nlp.pipe(texts, batch_size=batch_size):
        n += len(doc)
    return n


def run_components(nlp, docs, components, batch_size: int) -> int:
    stream = iter(docs)
    for name in components:
        proc = nlp.get_pipe(name)
        if hasattr(proc, "pipe"):
            stream = proc.pipe(stream, batch_size=batch_size)
        else:
            stream = map(proc, stream)
    return sum(len(doc) for doc in stream)


def timed(fn, repeats: int, resettable: bool):
    """Run ``fn`` ``repeats`` times; seconds of each run, words, and the peak RSS during the runs."""
    gc.collect()
    reset_peak_rss() if resettable else None
    seconds, words = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        words = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, words, peak_rss_bytes(resettable)


def summarize(seconds, words, peak) -> dict:
    median = statistics.median(seconds)
    return {
        "words_per_second": words / median if median > 0 else 0.0,
        "runs_words_per_second": [words / s if s > 0 else 0.0 for s in seconds],
        "seconds": seconds,
        "words": words,
        "peak_rss_bytes": peak,
    }


def spacy_benchmark_speed(nlp, texts, batch_size: int) -> dict:
    """spaCy's own `spacy benchmark speed` measure on the same docs: per-batch words/s of the whole
    pipeline on pre-tokenized docs (no shuffling), mean with a bootstrap 95% interval."""
    import numpy
    from spacy.cli import benchmark_speed as bench

    docs = [nlp.make_doc(text) for text in texts]
    n_batches = max(1, -(-len(docs) // batch_size))
    wps = bench.benchmark(nlp, docs, n_batches, batch_size, False)
    numpy.random.seed(0)
    means = numpy.sort(bench.bootstrap(wps))
    return {
        "mean_words_per_second": float(numpy.mean(wps)),
        "ci95_low": float(means[int(len(means) * 0.025)]),
        "ci95_high": float(means[int(len(means) * 0.975)]),
        "n_batches": int(len(wps)),
        "batch_size": batch_size,
    }


def _ops_name(ops) -> str:
    """The ops class, and for thinc's CPU ops whether gemm goes through blis."""
    blis = getattr(ops, "use_blis", None)
    return type(ops).__name__ + ("" if blis is None else f"(use_blis={bool(blis)})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--texts", required=True, help="JSONL of texts (one JSON string a line)")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup-docs", type=int, default=512)
    parser.add_argument("--modes", default="pipeline,ner")
    parser.add_argument("--spacy-benchmark", action="store_true")
    parser.add_argument("--component", default=None)
    parser.add_argument("--block-torch", action="store_true")
    parser.add_argument("--scaling", default=None, help="JSON list of {id, texts}: time each (pipeline mode)")
    parser.add_argument(
        "--numpy-gemm", action="store_true", help="Load the pipeline with thinc's NumpyOps(use_blis=False)"
    )
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    if args.block_torch:
        block_torch()
    resettable = reset_peak_rss()
    import spacy

    from spacy_compact_ner.tools.summary import count_parameters

    if args.numpy_gemm:  # layers take the current ops when they are made: set before loading
        from thinc.api import NumpyOps, set_current_ops

        set_current_ops(NumpyOps(use_blis=False))
    start = time.perf_counter()
    nlp = spacy.load(args.model)
    load_seconds = time.perf_counter() - start
    torch = sys.modules.get("torch")
    torch_threads = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        try:
            torch.set_num_interop_threads(args.threads)
        except RuntimeError:
            pass  # already started; set_num_threads is what matters for inference
        torch_threads = torch.get_num_threads()
    threadpools = None
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(args.threads)
        threadpools = [{k: p.get(k) for k in ("internal_api", "num_threads")} for p in threadpool_info()]
    except ImportError:
        pass

    ner = find_ner(nlp, args.component)
    path = ner_path(nlp, ner)
    vectors = nlp.vocab.vectors
    result = {
        "model": str(args.model),
        "pipeline": list(nlp.pipe_names),
        "ner_component": ner,
        "ner_path": path,
        "threads": args.threads,
        "ner_ops": _ops_name(nlp.get_pipe(ner).model.ops),
        "torch_threads": torch_threads,
        "torch_blocked": bool(args.block_torch),
        "torch_loaded": torch is not None,
        "threadpools": threadpools,
        "thread_env": {k: os.environ.get(k) for k in sorted(os.environ) if k.endswith("_THREADS")},
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "load_seconds": load_seconds,
        "parameters": {
            "pipeline": count_parameters(nlp),
            "ner": count_parameters(nlp, set(path)),
            "vectors": int(vectors.shape[0] * vectors.shape[1]) if vectors.shape[0] else 0,
        },
        "peak_rss_method": "VmHWM reset before timing" if resettable else "ru_maxrss of the whole process",
        "python": sys.executable,
        "spacy_version": spacy.__version__,
    }

    mode_names = [m.strip() for m in args.modes.split(",") if m.strip()]
    texts = read_texts(Path(args.texts)) if mode_names or args.spacy_benchmark else []
    result["n_docs"] = len(texts)
    if texts:  # warm-up: a few batches through the pipeline and through the NER path
        warm = texts[: args.warmup_docs]
        run_pipeline(nlp, warm, args.batch_size)
        run_components(nlp, [nlp.make_doc(t) for t in warm], path, args.batch_size)
    result["rss_after_load_bytes"] = _status_bytes("VmRSS")
    modes = {}
    for mode in mode_names:
        if mode == "pipeline":
            seconds, words, peak = timed(lambda: run_pipeline(nlp, texts, args.batch_size), args.repeats, resettable)
        elif mode == "ner":
            # Tokenization is done before each timed pass (fresh docs: no entities left from a previous pass).
            seconds, words = [], 0
            gc.collect()
            reset_peak_rss() if resettable else None
            for _ in range(args.repeats):
                docs = [nlp.make_doc(t) for t in texts]
                begin = time.perf_counter()
                words = run_components(nlp, docs, path, args.batch_size)
                seconds.append(time.perf_counter() - begin)
                del docs
            peak = peak_rss_bytes(resettable)
        else:
            raise SystemExit(f"unknown mode {mode!r} (pipeline, ner)")
        modes[mode] = summarize(seconds, words, peak)
    result["modes"] = modes
    result["n_words"] = next((m["words"] for m in modes.values()), None)
    result["spacy_benchmark_speed"] = (
        spacy_benchmark_speed(nlp, texts, args.batch_size) if args.spacy_benchmark else None
    )

    scaling = []
    for setting in json.loads(args.scaling) if args.scaling else []:
        setting_texts = read_texts(Path(setting["texts"]))
        run_pipeline(nlp, setting_texts[: max(1, min(len(setting_texts), 8))], args.batch_size)
        seconds, words, peak = timed(
            lambda texts=setting_texts: run_pipeline(nlp, texts, args.batch_size), args.repeats, resettable
        )
        entry = summarize(seconds, words, peak)
        entry.update({"id": setting["id"], "n_docs": len(setting_texts)})
        scaling.append(entry)
        del setting_texts
    result["scaling"] = scaling
    Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
