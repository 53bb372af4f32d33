"""The annotate step: run the trained teacher over labeled and unlabeled docs and store its
per-token tag logits with each doc, so the student trains without a transformer in memory.

Work is written in chunks under ``OUTPUT.parts/``; a rerun after a crash or a kill skips the chunks
already written, and the final ``OUTPUT`` appears (atomically) only when every chunk is done.
With ``cluster`` the teacher runs on Dask workers (`cluster.py`, the ``cluster`` extra): the chunks,
their batches, the part files and the final file are the same, only `chunk_logits` runs elsewhere.
"""

import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from wasabi import msg

from ..store import iter_docbin_docs, read_docbin, set_teacher_logits

TEXT_SUFFIXES = (".txt", ".text")


@dataclass
class AnnotateStats:
    docs: int = 0
    labeled_docs: int = 0
    words: int = 0
    seconds: float = 0.0
    chunks_reused: int = 0
    labels: List[str] = field(default_factory=list)
    # what the teacher ran over in this run (``words`` also counts the reused chunks)
    docs_annotated: int = 0
    words_annotated: int = 0
    workers: int = 1

    @property
    def words_per_second(self) -> float:
        """Words the teacher annotated per second in this run (reused chunks not counted)."""
        return self.words_annotated / self.seconds if self.seconds else 0.0


@dataclass
class Teachers:
    """The loaded teacher pipeline(s), each with the name of its compact_ner component."""

    members: List[Tuple[Language, str]]

    @property
    def nlp(self) -> Language:
        return self.members[0][0]

    @property
    def tags(self) -> List[str]:
        nlp, name = self.members[0]
        return list(nlp.get_pipe(name).tags)

    @property
    def labels(self) -> List[str]:
        nlp, name = self.members[0]
        return list(nlp.get_pipe(name).labels)


# (chunk id, docs) in, (chunk id, docs, one logits array per doc) out, in any order
ChunkRunner = Callable[[Iterator[Tuple[int, List[Doc]]]], Iterator[Tuple[int, List[Doc], List[numpy.ndarray]]]]


def parse_shard(shard: str) -> Tuple[int, int]:
    """Parse ``"K/N"`` (0 <= K < N) into ``(K, N)``."""
    try:
        k, n = (int(part) for part in shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like K/N (e.g. 0/4), got {shard!r}") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard K/N needs 0 <= K < N, got {shard!r}")
    return k, n


def find_ner_component(nlp: Language, name: Optional[str] = None) -> str:
    """The name of the ``compact_ner`` component in ``nlp`` (or check the given one)."""
    candidates = [pipe for pipe in nlp.pipe_names if nlp.get_pipe_meta(pipe).factory == "compact_ner"]
    if name is not None:
        if name not in candidates:
            raise ValueError(f"The teacher has no compact_ner component named {name!r} (found {candidates})")
        return name
    if len(candidates) != 1:
        raise ValueError(
            f"The teacher must have exactly one compact_ner component to annotate with, found {candidates}"
        )
    return candidates[0]


def iter_input_docs(nlp: Language, inputs: Sequence[Path], *, text_unit: str = "line") -> Iterator[Doc]:
    """Docs from ``.spacy`` files or folders (gold entities kept) and plain-text files (no annotation)."""
    from .corpus import read_text_docs

    for path in inputs:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Annotate input not found: {path}")
        if path.is_dir():
            files = sorted(path.glob("**/*.spacy"))
            if not files:
                raise ValueError(f"No .spacy files in input folder {path}")
        else:
            files = [path]
        for file in files:
            if file.suffix in TEXT_SUFFIXES:
                yield from read_text_docs(file, nlp, unit=text_unit)
            elif file.suffix == ".spacy":
                yield from iter_docbin_docs(file, nlp.vocab)
            else:
                raise ValueError(f"Unsupported annotate input {file}: expected .spacy, .txt or a folder")


def teacher_logits(nlp: Language, ner_name: str, docs: List[Doc], batch_size: int) -> list:
    """Run the teacher up to its compact_ner component on token-identical copies of ``docs``."""
    copies = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in docs]
    for name, proc in nlp.pipeline:
        if name == ner_name:
            return proc.predict(copies)
        copies = list(proc.pipe(copies, batch_size=batch_size)) if hasattr(proc, "pipe") else [proc(d) for d in copies]
    raise AssertionError("unreachable: the component is in the pipeline")


def ensemble_logits(logits: Sequence[numpy.ndarray]) -> numpy.ndarray:
    """Logits whose softmax is the mean of the softmaxes of ``logits`` (one array per teacher):
    ``log(mean_k softmax(z_k))``, computed stably. One array is returned unchanged."""
    if len(logits) == 1:
        return numpy.asarray(logits[0])
    stacked = numpy.stack([numpy.asarray(z, dtype="float32") for z in logits])
    log_probs = stacked - _logsumexp(stacked, axis=-1)
    return _logsumexp(log_probs, axis=0) - numpy.log(len(logits))


def _logsumexp(x: numpy.ndarray, axis: int) -> numpy.ndarray:
    top = x.max(axis=axis, keepdims=True)
    out = top + numpy.log(numpy.exp(x - top).sum(axis=axis, keepdims=True))
    return out if axis == -1 else numpy.squeeze(out, axis=axis)


def load_teachers(paths: Sequence[Path], component: Optional[str] = None) -> Teachers:
    """Load the teacher and any ensemble members; every member must have the first one's tags."""
    members = []
    for path in paths:
        nlp = spacy.load(path)
        members.append((nlp, find_ner_component(nlp, component)))
    teachers = Teachers(members)
    for (nlp, name), path in zip(members[1:], paths[1:]):
        if nlp.get_pipe(name).tags != teachers.tags:
            raise ValueError(
                f"Ensemble teacher {path} has other tags than {paths[0]}: {nlp.get_pipe(name).tags} vs {teachers.tags}"
            )
    return teachers


def chunk_logits(teachers: Teachers, chunk: List[Doc], batch_size: int) -> List[numpy.ndarray]:
    """The (ensembled) teacher logits of each doc of ``chunk``, in batches of ``batch_size`` docs.

    The one place the teacher runs, on this process or on a cluster worker: the batches depend only on
    the chunk, so the logits do not depend on where it runs.
    """
    logits = []
    for batch_start in range(0, len(chunk), batch_size):
        batch = chunk[batch_start : batch_start + batch_size]
        per_teacher = [teacher_logits(nlp, name, batch, batch_size) for nlp, name in teachers.members]
        logits.extend(ensemble_logits([z[i] for z in per_teacher]) for i in range(len(batch)))
    return logits


def write_part(chunk: List[Doc], logits: Sequence[numpy.ndarray], tags: Sequence[str], part: Path) -> None:
    """Store ``logits`` with the docs of ``chunk`` and write them (atomically) as the chunk's part file."""
    if len(logits) != len(chunk):
        raise ValueError(f"{part.name}: {len(logits)} logits arrays for {len(chunk)} docs")
    doc_bin = DocBin(store_user_data=True)
    for doc, doc_logits in zip(chunk, logits):
        set_teacher_logits(doc, doc_logits, tags)
        doc_bin.add(doc)
    _atomic_docbin(doc_bin, part)


def local_runner(teachers: Teachers, batch_size: int) -> ChunkRunner:
    """Annotate the chunks one by one in this process."""

    def run(pending: Iterator[Tuple[int, List[Doc]]]) -> Iterator[Tuple[int, List[Doc], List[numpy.ndarray]]]:
        for chunk_id, chunk in pending:
            yield chunk_id, chunk, chunk_logits(teachers, chunk, batch_size)

    return run


def annotate(
    teacher: Path,
    inputs: Sequence[Path],
    output: Path,
    *,
    batch_size: int = 64,
    chunk_size: int = 1000,
    shard: str = "0/1",
    text_unit: str = "line",
    limit: int = 0,
    component: Optional[str] = None,
    gpu_id: int = -1,
    show_progress: bool = True,
    ensemble: Sequence[Path] = (),
    cluster: Optional[str] = None,
) -> AnnotateStats:
    """Annotate ``inputs`` with the teacher's tag logits and write them to ``output`` (a .spacy file).

    teacher (Path): A trained pipeline with a compact_ner component.
    inputs (Sequence[Path]): ``.spacy`` files/folders (gold kept) and ``.txt`` files (one doc per line or paragraph).
    output (Path): The annotated DocBin, written only when complete.
    batch_size (int): Docs per teacher batch.
    chunk_size (int): Docs per resumable chunk.
    shard (str): ``K/N``: annotate only docs whose index modulo N is K.
    text_unit (str): ``line`` or ``paragraph`` for text inputs.
    limit (int): Stop after this many input docs (0: all), counted before sharding.
    component (Optional[str]): Name of the teacher's compact_ner component (found if omitted).
    gpu_id (int): GPU to run the teacher on, -1 for CPU.
    ensemble (Sequence[Path]): More trained teachers (e.g. other seeds) with the same tags: the stored
        distribution is then the mean of every teacher's softmax (stored as its log, see `ensemble_logits`).
    cluster (Optional[str]): Run the teacher on Dask workers: a scheduler address (``tcp://host:8786``)
        or ``local:N`` for a local cluster of N worker processes; ``gpu_id`` is then each worker's GPU.
        The output is the one a single process writes, and either can resume the other's chunks.
    """
    k, n = parse_shard(shard)
    if batch_size < 1 or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be >= 1")
    if gpu_id >= 0 and cluster is None:
        spacy.require_gpu(gpu_id)
    teacher = Path(teacher)
    teachers = [teacher, *map(Path, ensemble)]
    for path in teachers:
        if not path.exists():
            raise FileNotFoundError(f"Teacher pipeline not found: {path}")
    for path in inputs:
        if not Path(path).exists():
            raise FileNotFoundError(f"Annotate input not found: {path}")
    output = Path(output)
    # With a cluster this process still loads the teacher (on the CPU): its tokenizer makes the docs.
    loaded = load_teachers(teachers, component)
    nlp, tags = loaded.nlp, loaded.tags
    parts = output.parent / (output.name + ".parts")
    manifest = {
        "teacher": str(teacher.resolve()) if not ensemble else [str(p.resolve()) for p in teachers],
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "shard": [k, n],
        "chunk_size": chunk_size,
        "text_unit": text_unit,
        "limit": limit,
        "tags": tags,
        # Parts made from other input or teacher content (same paths, edited files) are not reused.
        "fingerprint": _fingerprint([*teachers, *inputs]),
    }
    _prepare_parts(parts, manifest)
    stats = AnnotateStats(labels=loaded.labels)
    total = _count_docs(nlp, inputs, text_unit=text_unit, limit=limit, shard=(k, n)) if show_progress else None
    stream: Iterable[Doc] = iter_input_docs(nlp, inputs, text_unit=text_unit)
    if limit:
        stream = islice(stream, limit)
    stream = (doc for i, doc in enumerate(stream) if i % n == k)
    progress = _progress(show_progress, total)
    start = 0.0  # set once the runner is up: a cluster's start-up is not annotation time

    def count(chunk: List[Doc], *, reused: bool) -> None:
        words = sum(len(d) for d in chunk)
        stats.docs += len(chunk)
        stats.labeled_docs += sum(1 for d in chunk if d.has_annotation("ENT_IOB"))
        stats.words += words
        if reused:
            stats.chunks_reused += 1
        else:
            stats.docs_annotated += len(chunk)
            stats.words_annotated += words
        stats.seconds = time.perf_counter() - start

    def pending() -> Iterator[Tuple[int, List[Doc]]]:
        for chunk_id, chunk in enumerate(_chunks(stream, chunk_size)):
            if (parts / _part_name(chunk_id)).exists():
                count(chunk, reused=True)
            else:
                yield chunk_id, chunk

    with _runner(loaded, teachers, cluster, component=component, batch_size=batch_size, gpu_id=gpu_id) as (
        run,
        stats.workers,
    ):
        start = time.perf_counter()
        for chunk_id, chunk, logits in run(pending()):
            write_part(chunk, logits, tags, parts / _part_name(chunk_id))
            count(chunk, reused=False)
            progress(stats, chunk_id)
    if stats.docs == 0:
        shutil.rmtree(parts)  # nothing was annotated: leave nothing that looks like work in progress
        raise ValueError(
            f"No docs to annotate in {[str(p) for p in inputs]} (shard {shard}): the inputs are empty "
            "or hold only blank lines"
        )
    _merge_parts(parts, output, nlp)
    (output.parent / (output.name + ".json")).write_text(
        json.dumps({**asdict(stats), "words_per_second": stats.words_per_second, **manifest}, indent=2)
    )
    return stats


@contextmanager
def _runner(
    loaded: Teachers,
    teachers: Sequence[Path],
    cluster: Optional[str],
    *,
    component: Optional[str],
    batch_size: int,
    gpu_id: int,
) -> Iterator[Tuple[ChunkRunner, int]]:
    """The chunk runner and its number of workers: this process, or the Dask workers of ``cluster``."""
    if cluster is None:
        yield local_runner(loaded, batch_size), 1
        return
    from .cluster import dask_runner  # the optional extra: imported only when asked for

    with dask_runner(
        cluster,
        teachers=teachers,
        fingerprint=_fingerprint(teachers),
        tags=loaded.tags,
        component=component,
        batch_size=batch_size,
        gpu_id=gpu_id,
    ) as runner:
        yield runner


def _part_name(chunk_id: int) -> str:
    return f"part-{chunk_id:06d}.spacy"


def _count_docs(nlp: Language, inputs: Sequence[Path], *, text_unit: str, limit: int, shard: Tuple[int, int]) -> int:
    """How many docs `annotate` will see (for the ETA), without tokenizing."""
    from .corpus import text_units

    total = 0
    for path in map(Path, inputs):
        files = sorted(path.glob("**/*.spacy")) if path.is_dir() else [path]
        for file in files:
            if file.suffix in TEXT_SUFFIXES:
                total += sum(1 for _ in text_units(file, nlp, unit=text_unit))  # type: ignore[arg-type]
            elif file.suffix == ".spacy":
                total += len(read_docbin(file))
    if limit:
        total = min(total, limit)
    k, n = shard
    return len(range(k, total, n))


def _chunks(stream: Iterable[Doc], size: int) -> Iterator[List[Doc]]:
    iterator = iter(stream)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _prepare_parts(parts: Path, manifest: dict) -> None:
    """Create the chunk folder, or reuse it if an interrupted run with the same settings left it."""
    manifest_path = parts / "manifest.json"
    if parts.exists():
        try:
            previous = json.loads(manifest_path.read_text())
        except (OSError, ValueError):  # missing, or cut short by a kill: the chunks cannot be trusted
            previous = None
        if previous == manifest:
            msg.info(f"Resuming: reusing finished chunks in {parts}")
            return
        msg.warn(f"Discarding chunks in {parts}: they were made with other settings or inputs")
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    tmp = manifest_path.with_name(manifest_path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(manifest_path)


def _fingerprint(paths: Sequence[Path]) -> str:
    """A SHA-256 over the names and contents of the files under ``paths``."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode("utf8") + b"\0")
            with file.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _atomic_docbin(doc_bin: DocBin, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    doc_bin.to_disk(tmp)
    tmp.replace(path)


def merge_docbins(paths: Sequence[Path], output: Path) -> None:
    """Write the docs of ``paths`` (DocBins with user data), in order, as one DocBin at ``output`` (atomically)."""
    merged = DocBin(store_user_data=True)
    for path in paths:
        merged.merge(DocBin(store_user_data=True).from_disk(path))
    output.parent.mkdir(parents=True, exist_ok=True)
    _atomic_docbin(merged, output)


def _merge_parts(parts: Path, output: Path, nlp: Language) -> None:
    merge_docbins(sorted(parts.glob("part-*.spacy")), output)
    shutil.rmtree(parts)


def _progress(enabled: bool, total: Optional[int]) -> Callable[[AnnotateStats, int], None]:
    """One line per finished chunk: docs so far, words/s of this run, and the ETA."""

    def report(stats: AnnotateStats, chunk_id: int) -> None:
        if not enabled:
            return
        rate = stats.words_per_second
        of_total = f"/{total:,}" if total is not None else ""
        eta = ""
        if total is not None and stats.docs_annotated and stats.seconds:
            left = max(total - stats.docs, 0) * stats.seconds / stats.docs_annotated
            eta = f", ETA {_clock(left)}"
        reused = f", {stats.chunks_reused} chunks reused" if stats.chunks_reused else ""
        print(
            f"chunk {chunk_id}: {stats.docs:,}{of_total} docs ({stats.labeled_docs:,} with gold), "
            f"{stats.words:,} words, {rate:,.0f} words/s{eta}{reused}",
            flush=True,
        )

    return report


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
