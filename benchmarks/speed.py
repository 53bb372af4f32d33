"""Speed and size of trained pipelines: words/s with 1 thread and with all cores, whole pipeline and
NER component alone, parameters, size on disk and as a wheel, peak RSS while tagging, and how
words/s and memory scale with input size and doc length.

Each measurement runs `worker.py` in its own subprocess with the thread environment set
(OMP/MKL/OPENBLAS/BLIS/RAYON ``*_NUM_THREADS``, plus ``torch.set_num_threads`` inside), so systems do
not share a process, a heap or a thread pool. Pipelines that do not need torch run with torch's
import blocked (thinc imports it eagerly when present), as they would when installed without it.

Per-system results are cached in ``metrics/benchmark/speed/<system>.json`` with the settings, text,
model fingerprint and code they were measured with, and reused when all of these match (``--force``
redoes). The code is the worker, plus, for pipelines with this package's components, the package
modules a loaded pipeline imports (``code_hash``), so a faster or slower model implementation is
measured again, not read from the cache, while edits to the command line or the benchmark are not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from . import SYSTEM_LABELS
from .code_hash import entry_point_modules, imported_files
from .common import cpu_count, machine_info, now_iso, write_json
from .schema import SPEED_SCHEMA

WORKER = Path(__file__).with_name("worker.py")
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "spacy_compact_ner"
PACKAGE_MARKERS = ("spacy-compact-ner.", "compact_ner")
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
)
TORCH_MARKERS = ("spacy-transformers", "spacy_transformers", 'factory = "transformer"', "curated_transformer")

Log = Callable[[str], None]


class SpeedError(RuntimeError):
    pass


@dataclass
class SpeedSettings:
    """What is measured and how; the defaults are those of the issue (50,000+ words, median of 5)."""

    batch_size: int = 256
    repeats: int = 5
    min_words: int = 50_000
    warmup_docs: int = 512
    thread_counts: List[int] = field(default_factory=lambda: sorted({1, cpu_count()}))
    modes: Tuple[str, ...] = ("pipeline", "ner")
    spacy_benchmark: bool = True
    scaling_words: List[int] = field(default_factory=lambda: [1_000, 10_000, 100_000, 1_000_000])
    scaling_doc_lengths: List[int] = field(default_factory=lambda: [10, 100, 1_000, 10_000])
    # The doc-length settings run at each of these thread counts (long docs: one or all cores).
    scaling_doc_threads: List[int] = field(default_factory=lambda: sorted({1, cpu_count()}))
    scaling_doc_words: int = 20_000
    scaling_repeats: int = 3
    scaling_max_seconds: float = 600.0
    isolate_scaling: bool = True
    # Also measured (no scaling, no wheel) as ``<name>_numpy_gemm``, loaded with thinc's
    # NumpyOps(use_blis=False): the student's gemm (cpu_gemm "numpy"), for a comparison on equal terms.
    numpy_gemm_systems: List[str] = field(default_factory=lambda: ["spacy_ner"])

    def to_dict(self) -> dict:
        data = asdict(self)
        data["modes"] = list(self.modes)
        return data


# ---------------------------------------------------------------------------------------------
# Texts


def iter_source_texts(source: Path, nlp) -> Iterator[str]:
    """Texts of one source: a .spacy file (its docs' texts), a .jsonl file (one JSON string a line),
    a .txt file or a folder of .txt files (sentences; folder files newest-first by name)."""
    from spacy.tokens import DocBin

    from spacy_compact_ner.tools.corpus import text_units

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"speed text source not found: {source}")
    if source.is_dir():
        files = sorted(source.glob("*.txt"), reverse=True)
        if not files:
            raise SpeedError(f"no .txt files in {source}")
    else:
        files = [source]
    for file in files:
        if file.suffix == ".spacy":
            for doc in DocBin().from_disk(file).get_docs(nlp.vocab):
                if doc.text.strip():
                    yield doc.text
        elif file.suffix == ".jsonl":
            with file.open(encoding="utf8") as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)
        else:
            yield from text_units(file, nlp, unit="sentence", min_chars=10)


@dataclass
class TextPool:
    texts: List[str]
    words: List[int]  # spaCy tokens per text
    cycled: bool
    sources: List[str]

    @property
    def n_words(self) -> int:
        return sum(self.words)

    def prefix(self, min_words: int) -> Tuple[List[str], int]:
        """The shortest prefix with at least ``min_words`` words (cycling if the pool is shorter)."""
        texts, total, i = [], 0, 0
        while total < min_words:
            texts.append(self.texts[i % len(self.texts)])
            total += self.words[i % len(self.texts)]
            i += 1
        return texts, total


def collect_texts(sources: Sequence[Path], min_words: int) -> TextPool:
    """Texts from the sources, in order, until ``min_words`` spaCy tokens (cycled if they run out)."""
    import spacy

    nlp = spacy.blank("en")
    texts: List[str] = []
    words: List[int] = []
    total = 0
    for source in sources:
        for text in iter_source_texts(source, nlp):
            n = len(nlp.make_doc(text))
            if not n:
                continue
            texts.append(text)
            words.append(n)
            total += n
            if total >= min_words:
                return TextPool(texts, words, False, [str(s) for s in sources])
    if not texts:
        raise SpeedError(f"no text in {[str(s) for s in sources]}")
    return TextPool(texts, words, True, [str(s) for s in sources])


def fixed_length_docs(pool: TextPool, doc_tokens: int, total_words: int) -> List[str]:
    """Texts of about ``doc_tokens`` tokens each (the pool's tokens, re-joined), ``total_words`` in all."""
    import spacy

    nlp = spacy.blank("en")
    n_docs = max(1, total_words // doc_tokens)
    docs: List[str] = []
    current: List[str] = []
    i = 0
    while len(docs) < n_docs:
        doc = nlp.make_doc(pool.texts[i % len(pool.texts)])
        i += 1
        for j, token in enumerate(doc):
            ws = token.whitespace_ or (" " if j == len(doc) - 1 else "")
            current.append(token.text + ws)
            if len(current) == doc_tokens:
                docs.append("".join(current).strip())
                current = []
                if len(docs) == n_docs:
                    break
    return docs


def write_jsonl(path: Path, texts: Iterable[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf8") as f:
        for text in texts:
            line = json.dumps(text, ensure_ascii=False) + "\n"
            digest.update(line.encode("utf8"))
            f.write(line)
    os.replace(tmp, path)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Size


def disk_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def model_fingerprint(path: Path) -> dict:
    files = [f for f in Path(path).rglob("*") if f.is_file()]
    return {
        "bytes": sum(f.stat().st_size for f in files),
        "files": len(files),
        "mtime": max((f.stat().st_mtime for f in files), default=0.0),
    }


def config_text(model: Path) -> str:
    """The pipeline's config.cfg as text ("" when it has none)."""
    config = Path(model) / "config.cfg"
    return config.read_text(encoding="utf8") if config.is_file() else ""


def code_fingerprint(model: Path, package_dir: Path = PACKAGE_DIR, roots: Optional[Sequence[str]] = None) -> str:
    """sha256 of the code that runs while ``model`` is timed: the worker, and, when the pipeline's
    config uses this package's components or architectures, the package modules its entry points
    (``roots``; default: the installed distribution's) import, directly or not. Without entry points
    (not installed) every module of the package counts."""
    text = config_text(model)
    files = [WORKER]
    if any(marker in text for marker in PACKAGE_MARKERS):
        roots = entry_point_modules() if roots is None else roots
        if roots:
            files += imported_files(roots, Path(package_dir))
        else:
            files += sorted(Path(package_dir).rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(package_dir) if path.is_relative_to(package_dir) else Path(path.name)
        digest.update(name.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def python_environment(python: str) -> str:
    """The environment an interpreter belongs to: ``bin/python`` and ``bin/python3`` of a venv are one."""
    return str(Path(python).absolute().parent.parent)


def needs_torch(model: Path) -> bool:
    """Whether the pipeline needs torch (a transformer in its config)."""
    text = config_text(model)
    return any(marker in text for marker in TORCH_MARKERS)


def build_wheel(model: Path, out_dir: Path, name: str, *, python: str = sys.executable, log: Log = print) -> Path:
    """A wheel of the pipeline: ``spacy package --build none``, then ``pip wheel --no-build-isolation``
    (``spacy_compact_ner.tools.packaging.build_wheel``; no network: the build backend comes from this
    environment)."""
    out_dir = Path(out_dir)
    package_root = out_dir / "package"
    dist = out_dir / "dist"
    for folder in (package_root, dist):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    package_name = "bench_" + "".join(c if c.isalnum() else "_" for c in name)
    log(f"[speed] building a wheel of {name} ({model})")
    if python == sys.executable:  # in this process: one interpreter start less
        from spacy.cli.package import package

        try:
            package(
                Path(model),
                package_root,
                name=package_name,
                version="0.0.0",
                create_sdist=False,
                create_wheel=False,
                force=True,
                silent=True,
            )
        except SystemExit as err:
            raise SpeedError(f"spacy package failed for {name} (exit {err.code})") from None
    else:
        cmd = [
            python,
            "-m",
            "spacy",
            "package",
            str(model),
            str(package_root),
            "--name",
            package_name,
            "--version",
            "0.0.0",
            "--build",
            "none",
            "--force",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SpeedError(f"spacy package failed for {name}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    packages = [p for p in package_root.iterdir() if p.is_dir() and (p / "setup.py").is_file()]
    if len(packages) != 1:
        raise SpeedError(f"spacy package wrote {len(packages)} package folders in {package_root}")
    from spacy_compact_ner.tools.packaging import PackagingError
    from spacy_compact_ner.tools.packaging import build_wheel as pip_wheel

    try:
        wheel = pip_wheel(packages[0], dist, python=python)
    except PackagingError as err:
        raise SpeedError(f"no wheel of {name}: {err}") from None
    shutil.rmtree(package_root)
    return wheel


# ---------------------------------------------------------------------------------------------
# Workers


def thread_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    for var in THREAD_ENV_VARS:
        env[var] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def run_worker(
    model: Path,
    texts: Path,
    output: Path,
    *,
    threads: int,
    settings: SpeedSettings,
    python: str,
    block_torch: bool,
    modes: Sequence[str],
    spacy_benchmark: bool,
    repeats: int,
    scaling: Optional[List[dict]] = None,
    numpy_gemm: bool = False,
) -> dict:
    cmd = [
        python,
        str(WORKER),
        "--model",
        str(model),
        "--texts",
        str(texts),
        "--threads",
        str(threads),
        "--batch-size",
        str(settings.batch_size),
        "--repeats",
        str(repeats),
        "--warmup-docs",
        str(settings.warmup_docs),
        "--modes",
        ",".join(modes),
        "--output",
        str(output),
    ]
    if spacy_benchmark:
        cmd.append("--spacy-benchmark")
    if block_torch:
        cmd.append("--block-torch")
    if scaling:
        cmd += ["--scaling", json.dumps(scaling)]
    if numpy_gemm:
        cmd.append("--numpy-gemm")
    output.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(threads))
    if done.returncode != 0:
        if block_torch and "halted; None in sys.modules" in done.stderr:  # it needs torch after all
            return run_worker(
                model,
                texts,
                output,
                threads=threads,
                settings=settings,
                python=python,
                block_torch=False,
                modes=modes,
                spacy_benchmark=spacy_benchmark,
                repeats=repeats,
                scaling=scaling,
                numpy_gemm=numpy_gemm,
            )
        raise SpeedError(f"speed worker failed for {model} ({threads} threads):\n{done.stderr[-3000:]}")
    return json.loads(output.read_text())


# ---------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class TextSets:
    main: Path
    main_info: dict
    input_words: List[Tuple[int, Path, int, int]]  # target words, file, words, docs
    doc_lengths: List[Tuple[int, Path, int]]  # tokens per doc, file, docs


def prepare_texts(sources: Sequence[Path], settings: SpeedSettings, folder: Path, log: Log) -> TextSets:
    largest = max(
        [settings.min_words, *settings.scaling_words, settings.scaling_doc_words if settings.scaling_doc_lengths else 0]
    )
    log(f"[speed] collecting {largest:,} words of text from {', '.join(map(str, sources))}")
    pool = collect_texts(sources, largest)
    main_texts, main_words = pool.prefix(settings.min_words)
    main = folder / "main.jsonl"
    sha = write_jsonl(main, main_texts)
    info = {
        "sources": pool.sources,
        "n_docs": len(main_texts),
        "n_words": main_words,
        "cycled": pool.cycled and main_words > pool.n_words,
        "sha256": sha,
        "words": "spaCy tokens (blank English tokenizer)",
    }
    input_words = []
    for target in settings.scaling_words:
        texts, words = pool.prefix(target)
        path = folder / f"words-{target}.jsonl"
        write_jsonl(path, texts)
        input_words.append((target, path, words, len(texts)))
    doc_lengths = []
    for length in settings.scaling_doc_lengths:
        texts = fixed_length_docs(pool, length, settings.scaling_doc_words)
        path = folder / f"doclen-{length}.jsonl"
        write_jsonl(path, texts)
        doc_lengths.append((length, path, len(texts)))
    return TextSets(main, info, input_words, doc_lengths)


def measure_system(
    name: str,
    model: Path,
    texts: TextSets,
    settings: SpeedSettings,
    *,
    work_dir: Path,
    python: str = sys.executable,
    wheel: Optional[Path] = None,
    build_wheels: bool = True,
    numpy_gemm: bool = False,
    log: Log = print,
) -> dict:
    """All measurements of one pipeline (several worker processes); ``numpy_gemm``: loaded with
    thinc's NumpyOps(use_blis=False)."""
    model = Path(model)
    block = not needs_torch(model)
    runs: Dict[str, dict] = {}
    for threads in settings.thread_counts:
        log(f"[speed] {name}: {texts.main_info['n_words']:,} words, {threads} thread(s), median of {settings.repeats}")
        runs[str(threads)] = run_worker(
            model,
            texts.main,
            work_dir / "runs" / f"{name}-t{threads}.json",
            threads=threads,
            settings=settings,
            python=python,
            block_torch=block,
            modes=settings.modes,
            spacy_benchmark=settings.spacy_benchmark,
            repeats=settings.repeats,
            numpy_gemm=numpy_gemm,
        )
    one = runs[str(min(settings.thread_counts))]
    base_wps = one["modes"].get("pipeline", next(iter(one["modes"].values())))["words_per_second"]

    def estimate(words: int) -> float:
        return words * (settings.scaling_repeats + 0.2) / base_wps if base_wps > 0 else float("inf")

    settings_list = []
    # Only the settings asked for (the texts may have been made for a fuller run).
    for target, path, words, _n_docs in texts.input_words:
        if target in settings.scaling_words:
            settings_list.append(("input_words", {"words_target": target}, f"words-{target}", path, words, 1))
    for threads in settings.scaling_doc_threads or [1]:
        for length, path, n_docs in texts.doc_lengths:
            if length not in settings.scaling_doc_lengths:
                continue
            sid = f"doclen-{length}" + (f"-t{threads}" if threads != 1 else "")
            head = {"doc_tokens": length, "threads": threads}
            settings_list.append(("doc_length", head, sid, path, length * n_docs, threads))
    scaling: Dict[str, List[dict]] = {"input_words": [], "doc_length": []}
    to_run = []
    for kind, head, sid, path, words, threads in settings_list:
        seconds = estimate(words)  # from the 1-thread words/s: an upper bound with more threads
        if seconds > settings.scaling_max_seconds:
            scaling[kind].append(
                {**head, "skipped": f"estimated {seconds:,.0f} s > limit {settings.scaling_max_seconds:,.0f} s"}
            )
        else:
            to_run.append((kind, head, sid, path, threads))
            scaling[kind].append({**head, "_id": sid})
    if settings.isolate_scaling:
        groups = [[item] for item in to_run]
    else:  # one process per thread count
        groups = [[item for item in to_run if item[4] == t] for t in dict.fromkeys(item[4] for item in to_run)]
    measured: Dict[str, dict] = {}
    failures: Dict[str, str] = {}
    for group in groups:
        threads = group[0][4]
        log(f"[speed] {name}: scaling {', '.join(item[2] for item in group)} ({threads} thread(s))")
        try:
            out = run_worker(
                model,
                group[0][3],
                work_dir / "runs" / f"{name}-scaling-{group[0][2]}.json",
                threads=threads,
                settings=settings,
                python=python,
                block_torch=block,
                modes=(),
                spacy_benchmark=False,
                repeats=settings.scaling_repeats,
                scaling=[{"id": item[2], "texts": str(item[3])} for item in group],
                numpy_gemm=numpy_gemm,
            )
        except SpeedError as err:
            last = [line for line in str(err).splitlines() if line.strip()][-1]
            log(f"[speed] {name}: scaling failed: {last}")
            failures.update({item[2]: f"failed: {last}" for item in group})
            continue
        for entry in out["scaling"]:
            measured[entry["id"]] = entry
    for kind in scaling:
        for entry in scaling[kind]:
            sid = entry.pop("_id", None)
            if sid in failures:
                entry["skipped"] = failures[sid]
            elif sid is not None:
                m = measured[sid]
                entry.update(
                    {
                        "n_words": m["words"],
                        "n_docs": m["n_docs"],
                        "words_per_second": m["words_per_second"],
                        "runs_words_per_second": m["runs_words_per_second"],
                        "peak_rss_bytes": m["peak_rss_bytes"],
                    }
                )

    wheel_path = Path(wheel) if wheel else None
    if wheel_path is None and build_wheels:
        try:
            wheel_path = build_wheel(model, work_dir / "wheels" / name, name, python=python, log=log)
        except SpeedError as err:
            log(f"[speed] {name}: no wheel ({err})")
    threads_out = {}
    for key, run in runs.items():
        threads_out[key] = {
            "threads": run["threads"],
            "torch_threads": run["torch_threads"],
            "pipeline_words_per_second": run["modes"]["pipeline"]["words_per_second"]
            if "pipeline" in run["modes"]
            else None,
            "ner_words_per_second": run["modes"]["ner"]["words_per_second"] if "ner" in run["modes"] else None,
            "modes": run["modes"],
            "peak_rss_bytes": max(m["peak_rss_bytes"] for m in run["modes"].values()) if run["modes"] else None,
            "rss_after_load_bytes": run["rss_after_load_bytes"],
            "load_seconds": run["load_seconds"],
            "spacy_benchmark_speed": run["spacy_benchmark_speed"],
        }
    return {
        "model": str(model),
        "description": SYSTEM_LABELS.get(name, name),
        "pipeline": one["pipeline"],
        "ner_component": one["ner_component"],
        "ner_path": one["ner_path"],
        "parameters": one["parameters"]["pipeline"],
        "ner_parameters": one["parameters"]["ner"],
        "vectors": one["parameters"]["vectors"],
        "disk_bytes": disk_bytes(model),
        "wheel": str(wheel_path) if wheel_path else None,
        "wheel_bytes": wheel_path.stat().st_size if wheel_path and wheel_path.is_file() else None,
        "torch_blocked": one["torch_blocked"],
        "torch_loaded": one["torch_loaded"],
        "ner_ops": one.get("ner_ops"),
        "peak_rss_method": one["peak_rss_method"],
        "python": one["python"],
        "threads": threads_out,
        "scaling": scaling,
    }


def run_speed(
    models: Dict[str, Path],
    sources: Sequence[Path],
    *,
    cache_dir: Path = Path("metrics/benchmark/speed"),
    work_dir: Path = Path("training/benchmark/speed"),
    settings: Optional[SpeedSettings] = None,
    wheels: Optional[Dict[str, Path]] = None,
    pythons: Optional[Dict[str, str]] = None,
    build_wheels: bool = True,
    force: bool = False,
    log: Log = print,
) -> dict:
    """Measure every pipeline in ``models`` (name -> path); `report.write_speed` checks the targets and
    writes the JSON, markdown and plot.

    sources (Sequence[Path]): Text sources, in order (e.g. the test .spacy, then the SOTU folder).
    cache_dir (Path): Per-system results, reused when model, text and settings are unchanged.
    wheels (Dict[str, Path]): Existing wheels by system name; others are built if ``build_wheels``.
    pythons (Dict[str, str]): Interpreter per system (default: this one).
    RETURNS (dict): The speed JSON's measurements (no targets yet).
    """
    settings = settings or SpeedSettings()
    wheels = wheels or {}
    pythons = pythons or {}
    for name, path in models.items():
        if not Path(path).is_dir():
            raise FileNotFoundError(f"pipeline of {name} not found: {path}")
    texts = prepare_texts([Path(s) for s in sources], settings, Path(work_dir) / "texts", log)
    systems: Dict[str, dict] = {}
    failed: Dict[str, str] = {}
    runs = [(name, Path(path), False, settings) for name, path in models.items()]
    # The same pipeline again with numpy's gemm: the main measurement only (no scaling, no wheel).
    plain = replace(settings, scaling_words=[], scaling_doc_lengths=[], numpy_gemm_systems=[])
    runs += [
        (f"{name}_numpy_gemm", Path(models[name]), True, plain)
        for name in settings.numpy_gemm_systems
        if name in models
    ]
    for name, path, numpy_gemm, run_settings in runs:
        python = pythons.get(name, sys.executable)
        key = {
            "model": str(Path(path).resolve()),
            "fingerprint": model_fingerprint(Path(path)),
            "code_sha256": code_fingerprint(Path(path)),
            "text_sha256": texts.main_info["sha256"],
            "settings": run_settings.to_dict(),
            "python": python_environment(python),
            "wheel": str(wheels[name]) if name in wheels else None,
            **({"numpy_gemm": True} if numpy_gemm else {}),
        }
        cache = Path(cache_dir) / f"{name}.json"
        if not force and cache.is_file():
            cached = json.loads(cache.read_text())
            if cached.get("key") == key:
                log(f"[speed] {name}: reusing {cache}")
                systems[name] = cached["result"]
                continue
        try:
            result = measure_system(
                name,
                path,
                texts,
                run_settings,
                work_dir=Path(work_dir),
                python=python,
                wheel=wheels.get(name),
                build_wheels=build_wheels and not numpy_gemm,
                numpy_gemm=numpy_gemm,
                log=log,
            )
        except SpeedError as err:
            failed[name] = str(err)
            log(f"[speed] {name}: FAILED: {err}")
            continue
        result["date"] = now_iso()
        write_json(cache, {"key": key, "result": result})
        systems[name] = result
    data = {
        "schema": SPEED_SCHEMA,
        "date": now_iso(),
        "machine": machine_info(),
        "settings": {**settings.to_dict(), "all_cores": cpu_count()},
        "text": texts.main_info,
        "scaling_text": {
            "input_words": [{"words_target": t, "n_words": w, "n_docs": d} for t, _, w, d in texts.input_words],
            "doc_length": [{"doc_tokens": length, "n_docs": d} for length, _, d in texts.doc_lengths],
        },
        "systems": systems,
        "failed": failed,
    }
    return data
