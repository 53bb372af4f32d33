"""Annotate on a Dask cluster: the chunks of `annotate.annotate` become tasks on Dask workers.

The optional ``cluster`` extra (``pip install "spacy-compact-ner[cluster]"``, i.e. ``dask[distributed]``);
this module is imported only when ``annotate`` is given a cluster, and imports Dask only inside its
functions. The client reads the inputs, cuts the chunks and writes the part files and the output
exactly as a single process does; a task gets one chunk as DocBin bytes (words and spaces only, so
workers need no shared filesystem for the data) and returns that chunk's logits, computed by the very
function a single process calls (`annotate.chunk_logits`, same batches, so the same floats). Each
worker loads the teacher once (a per-process cache keyed by the teacher paths, component and GPU):
the teacher path must exist on every worker, and the worker checks that it holds the same files.

Dask reruns the tasks of a worker that dies (up to ``distributed.scheduler.allowed-failures`` times);
when a chunk still fails, the run stops with a `ClusterError`, keeping every finished chunk, and the
same command resumes it.
"""

import logging
import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, DocBin

from .annotate import ChunkRunner, Teachers, _fingerprint, chunk_logits, load_teachers

INSTALL_HINT = 'pip install "spacy-compact-ner[cluster]"'
TASK_PREFIX = "annotate-chunk"
CONNECT_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """The cluster could not be used, or a chunk failed on it."""


@dataclass(frozen=True)
class TeacherSpec:
    """What a worker needs to load the teacher: sent with every task (a few hundred bytes)."""

    paths: Tuple[str, ...]
    component: Optional[str]
    gpu_id: int
    fingerprint: str
    # torch threads per worker (local:N: this machine's cores / N); None keeps the worker's own setting
    torch_threads: Optional[int] = None


def parse_cluster(address: str) -> Tuple[str, Optional[int]]:
    """``"local:N"`` -> ``("local", N)``; any other address -> ``(address, None)``."""
    address = address.strip()
    if not address:
        raise ClusterError("--cluster needs a scheduler address (tcp://host:8786) or local:N")
    if address.startswith("local:") or address == "local":
        try:
            n_workers = int(address.partition(":")[2])
        except ValueError:
            n_workers = 0
        if n_workers < 1:
            raise ClusterError(f"--cluster local:N needs N >= 1 workers, got {address!r}")
        return "local", n_workers
    return address, None


def require_distributed() -> Any:
    """The ``distributed`` module, or a ClusterError saying how to install it."""
    try:
        import distributed
    except ImportError as err:
        raise ClusterError(f"--cluster needs Dask distributed, which is not installed: {INSTALL_HINT}") from err
    return distributed


@contextmanager
def connect(address: str, *, timeout: float = CONNECT_TIMEOUT) -> Iterator[Any]:
    """A Dask client: of a new local cluster for ``local:N`` (closed on exit), else of the scheduler at
    ``address`` (left running). Waits for the first worker."""
    distributed = require_distributed()
    where, n_workers = parse_cluster(address)
    cluster = None
    try:
        if n_workers is not None:
            cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster, set_as_default=False)
        else:
            try:
                client = distributed.Client(where, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise ClusterError(f"Cannot reach the Dask scheduler at {where}: {err}") from err
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except TimeoutError as err:
                raise ClusterError(f"The Dask cluster at {where} has no worker after {timeout:.0f} s") from err
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def local_torch_threads(address: str) -> Optional[int]:
    """For ``local:N``, this machine's cores split between the N workers; else None (a worker of an
    existing cluster keeps its own setting: Dask gives each worker process one thread by default)."""
    _, n_workers = parse_cluster(address)
    return None if n_workers is None else max(1, (os.cpu_count() or 1) // n_workers)


@contextmanager
def dask_runner(
    address: str,
    *,
    teachers: Sequence[Path],
    fingerprint: str,
    tags: Sequence[str],
    component: Optional[str],
    batch_size: int,
    gpu_id: int,
) -> Iterator[Tuple[ChunkRunner, int]]:
    """A chunk runner on the Dask cluster at ``address`` (see `connect`) and its number of workers."""
    spec = TeacherSpec(
        paths=tuple(str(Path(p).resolve()) for p in teachers),
        component=component,
        gpu_id=gpu_id,
        fingerprint=fingerprint,
        torch_threads=local_torch_threads(address),
    )
    with connect(address) as client:
        n_workers = len(client.nthreads())
        print(f"annotating on {n_workers} Dask workers ({client.scheduler.address})", flush=True)
        yield _chunk_runner(client, spec, list(tags), batch_size), n_workers


def _chunk_runner(client: Any, spec: TeacherSpec, tags: List[str], batch_size: int) -> ChunkRunner:
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]

    def run(pending: Iterator[Tuple[int, List[Doc]]]) -> Iterator[Tuple[int, List[Doc], List[numpy.ndarray]]]:
        in_flight: Dict[Any, Tuple[int, List[Doc]]] = {}
        finished = as_completed(loop=client.loop)

        def submit_more() -> None:
            # A few chunks per worker thread: the workers never wait, the client holds few chunks.
            while len(in_flight) < max(2, 2 * sum(client.nthreads().values())):
                item = next(pending, None)
                if item is None:
                    return
                chunk_id, chunk = item
                future = client.submit(
                    annotate_on_worker,
                    docs_to_bytes(chunk),
                    spec,
                    batch_size,
                    key=f"{TASK_PREFIX}-{chunk_id:06d}-{run_id}",
                )
                in_flight[future] = item
                finished.add(future)

        try:
            submit_more()
            for future in finished:
                chunk_id, chunk = in_flight.pop(future)
                yield chunk_id, chunk, _chunk_result(future, chunk_id, spec, tags)
                submit_more()
        finally:
            if in_flight:  # an error or an interrupt: stop the rest, the finished parts are on disk
                client.cancel(list(in_flight))

    return run


def _chunk_result(future: Any, chunk_id: int, spec: TeacherSpec, tags: List[str]) -> List[numpy.ndarray]:
    try:
        result = future.result()
    except Exception as err:
        raise ClusterError(
            f"Chunk {chunk_id} failed on the cluster ({type(err).__name__}: {err}). The finished chunks are "
            "kept: run the same command again to resume."
        ) from err
    worker = result["worker"]
    if result["fingerprint"] != spec.fingerprint:
        raise ClusterError(
            f"Worker {worker} has other teacher files at {list(spec.paths)} than this machine: every worker "
            "needs the same teacher at the same path"
        )
    if result["tags"] != tags:
        raise ClusterError(f"Worker {worker}'s teacher has tags {result['tags']}, expected {tags}")
    return result["logits"]


def docs_to_bytes(docs: Sequence[Doc]) -> bytes:
    """The words and spaces of ``docs`` (all the teacher sees) as DocBin bytes."""
    return DocBin(attrs=["ORTH"], docs=docs).to_bytes()


# Worker side: one loaded teacher per worker process (the last one asked for), shared by its threads.
_TEACHER_CACHE: Dict[Tuple[Tuple[str, ...], Optional[str], int], Tuple[Teachers, str]] = {}
_TEACHER_LOCK = threading.Lock()
_LOADS = {"count": 0}


def annotate_on_worker(chunk: bytes, spec: TeacherSpec, batch_size: int) -> Dict[str, Any]:
    """Task: the teacher logits of one chunk (DocBin bytes), with this worker's teacher tags and files.

    The logits go back as float16, the precision `set_teacher_logits` stores (so nothing changes).
    """
    import spacy

    if spec.gpu_id >= 0:  # in the task's own thread, where the teacher runs
        spacy.require_gpu(spec.gpu_id)
    teachers, fingerprint = _worker_teachers(spec)
    docs = list(DocBin().from_bytes(chunk).get_docs(teachers.nlp.vocab))
    logits = chunk_logits(teachers, docs, batch_size)
    return {
        "logits": [numpy.asarray(z, dtype="<f2") for z in logits],
        "tags": teachers.tags,
        "fingerprint": fingerprint,
        "worker": _worker_address(),
    }


def _worker_teachers(spec: TeacherSpec) -> Tuple[Teachers, str]:
    key = (spec.paths, spec.component, spec.gpu_id)
    with _TEACHER_LOCK:
        if key not in _TEACHER_CACHE:
            paths = [Path(p) for p in spec.paths]
            for path in paths:
                if not path.exists():
                    raise FileNotFoundError(
                        f"Teacher pipeline not found on worker {_worker_address()}: {path} "
                        "(the teacher must exist at the same path on every worker)"
                    )
            _TEACHER_CACHE.clear()  # a long-lived worker keeps only the latest teacher in memory
            if spec.torch_threads:
                import torch

                torch.set_num_threads(spec.torch_threads)
            _TEACHER_CACHE[key] = (load_teachers(paths, spec.component), _fingerprint(paths))
            _LOADS["count"] += 1
        return _TEACHER_CACHE[key]


def teacher_loads() -> int:
    """How often this process loaded a teacher (run it on the workers with ``client.run``)."""
    return _LOADS["count"]


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not on a worker
        return "local"
