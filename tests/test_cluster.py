"""Annotate on a local Dask cluster (2 worker processes, 1 thread each) writes the single-process output,
also after a worker or the client is killed mid-run."""

import os
import subprocess
import sys
import time

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_compact_ner.store import get_teacher_logits
from spacy_compact_ner.tools.annotate import annotate
from spacy_compact_ner.tools.cluster import (
    TASK_PREFIX,
    ClusterError,
    local_torch_threads,
    parse_cluster,
    teacher_loads,
)
from tests.fixtures import ROOT, toy_docs
from tests.util import ents

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")

CHUNK_SIZE = 8
BATCH_SIZE = 3  # batches that do not divide the chunks: a changed batch composition would change the floats
N_DOCS = 70  # 40 gold + 30 unlabeled: 9 chunks
N_CHUNKS = 9


class ExitOnce(distributed.WorkerPlugin):
    """Kill the worker process (as a crash would) when it starts annotating chunk ``chunk_id``, once."""

    def __init__(self, chunk_id: int, flag: str):
        self.prefix = f"{TASK_PREFIX}-{chunk_id:06d}-"
        self.flag = flag

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith(self.prefix) and not os.path.exists(self.flag):
            open(self.flag, "w").close()
            os._exit(1)


@pytest.fixture(scope="module")
def inputs(toy_corpus, tmp_path_factory):
    """40 gold docs (.spacy) and 30 unlabeled sentences (.txt)."""
    root = tmp_path_factory.mktemp("cluster_inputs")
    texts = [d.text for d in toy_docs(spacy.blank("en").vocab, 30, seed=11, annotated=False)]
    (root / "unlabeled.txt").write_text("\n".join(texts) + "\n", encoding="utf8")
    return [toy_corpus["train"], root / "unlabeled.txt"]


def run_annotate(teacher, inputs, output, **kwargs):
    return annotate(teacher, inputs, output, chunk_size=CHUNK_SIZE, batch_size=BATCH_SIZE, **kwargs)


@pytest.fixture(scope="module")
def reference(trained_teacher, inputs, tmp_path_factory):
    """The single-process output."""
    output = tmp_path_factory.mktemp("reference") / "distill.spacy"
    stats = run_annotate(trained_teacher, inputs, output, show_progress=False)
    assert stats.docs == N_DOCS and stats.workers == 1
    return output


@pytest.fixture(scope="module")
def dask_cluster():
    """A local cluster of 2 worker processes with 1 thread each, closed after the module's tests."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    ) as cluster:
        yield cluster


@pytest.fixture
def client(dask_cluster):
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        yield client
    dask_cluster.scheduler.allowed_failures = 3


def assert_same_output(output, reference):
    """Doc by doc (words, entities, logits) and byte for byte."""
    vocab = spacy.blank("en").vocab
    docs = list(DocBin(store_user_data=True).from_disk(output).get_docs(vocab))
    expected = list(DocBin(store_user_data=True).from_disk(reference).get_docs(vocab))
    assert len(docs) == len(expected) == N_DOCS
    for doc, want in zip(docs, expected):
        assert [t.text for t in doc] == [t.text for t in want]
        assert ents(doc) == ents(want)
        numpy.testing.assert_array_equal(get_teacher_logits(doc)[0], get_teacher_logits(want)[0])
    assert output.read_bytes() == reference.read_bytes()
    assert not output.with_name(output.name + ".parts").exists()


def parts_of(output):
    return sorted(output.with_name(output.name + ".parts").glob("part-*.spacy"))


@pytest.mark.slow  # about 20 s: two worker processes start and load torch and the teacher
def test_a_local_cluster_writes_the_single_process_output(trained_teacher, inputs, reference, tmp_path):
    psutil = pytest.importorskip("psutil")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    output = tmp_path / "distill.spacy"
    stats = run_annotate(trained_teacher, inputs, output, cluster="local:2", show_progress=False)
    assert stats.workers == 2 and stats.docs == N_DOCS and stats.docs_annotated == N_DOCS
    assert_same_output(output, reference)
    assert not _new_processes(psutil, before), "a cluster process outlived the run"


def _new_processes(psutil, before: set) -> list:
    """Child processes started since ``before``, less zombies and multiprocessing's resource tracker (one
    per interpreter, it ends with it)."""
    new = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.pid in before or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if "resource_tracker" not in " ".join(proc.cmdline()):
                new.append(proc)
        except psutil.NoSuchProcess:
            continue
    return new


def test_the_cli_runs_on_an_existing_cluster_and_loads_the_teacher_once_per_worker(
    trained_teacher, inputs, reference, client, tmp_path
):
    from spacy_compact_ner.tools.cli import app

    output = tmp_path / "distill.spacy"
    args = ["annotate", str(trained_teacher), *map(str, inputs), str(output)]
    args += ["--chunk-size", str(CHUNK_SIZE), "--batch-size", str(BATCH_SIZE), "--cluster", client.scheduler.address]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert_same_output(output, reference)
    progress = [line for line in result.output.splitlines() if line.startswith("chunk ")]
    assert len(progress) == N_CHUNKS and f"{N_DOCS}/{N_DOCS} docs" in progress[-1] and "ETA" in progress[-1]
    assert "on 2 workers" in result.output
    assert sorted(client.run(teacher_loads).values()) == [1, 1]
    # a second run on the same workers reuses their loaded teacher
    run_annotate(trained_teacher, inputs, tmp_path / "again.spacy", cluster=client.scheduler.address)
    assert sorted(client.run(teacher_loads).values()) == [1, 1]


def test_a_killed_worker_is_replaced_and_its_chunk_rerun(trained_teacher, inputs, reference, client, tmp_path):
    flag = tmp_path / "killed"
    client.register_plugin(ExitOnce(3, str(flag)), name="exit-once")
    try:
        output = tmp_path / "distill.spacy"
        stats = run_annotate(trained_teacher, inputs, output, cluster=client.scheduler.address, show_progress=False)
    finally:
        client.unregister_worker_plugin("exit-once")
    assert flag.exists(), "no worker was killed"
    assert stats.docs_annotated == N_DOCS
    assert_same_output(output, reference)


@pytest.mark.slow  # about 20 s: the restarted worker loads torch and the teacher
def test_a_rerun_after_a_killed_worker_reuses_the_finished_chunks(
    trained_teacher, inputs, reference, client, dask_cluster, tmp_path
):
    dask_cluster.scheduler.allowed_failures = 0  # the first worker death fails the run
    flag = tmp_path / "killed"
    client.register_plugin(ExitOnce(5, str(flag)), name="exit-once")
    output = tmp_path / "distill.spacy"
    try:
        # the worker dies on chunk 5, but it holds a few chunks at once: whichever of them fails first is named
        with pytest.raises(ClusterError, match=r"Chunk \d+ failed on the cluster .*run the same command again"):
            run_annotate(trained_teacher, inputs, output, cluster=client.scheduler.address, show_progress=False)
    finally:
        client.unregister_worker_plugin("exit-once")
    assert flag.exists() and not output.exists()
    finished = len(parts_of(output))
    assert 1 <= finished < N_CHUNKS
    stats = run_annotate(trained_teacher, inputs, output, cluster=client.scheduler.address, show_progress=False)
    assert stats.chunks_reused == finished
    assert stats.docs == N_DOCS and stats.docs_annotated < N_DOCS
    assert_same_output(output, reference)


def test_a_rerun_after_a_killed_client_reuses_the_finished_chunks(
    trained_teacher, inputs, reference, client, tmp_path, monkeypatch
):
    import spacy_compact_ner.tools.annotate as annotate_module

    real = annotate_module.write_part
    calls = {"n": 0}

    def interrupt_on_third_part(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(annotate_module, "write_part", interrupt_on_third_part)
    output = tmp_path / "distill.spacy"
    with pytest.raises(KeyboardInterrupt):
        run_annotate(trained_teacher, inputs, output, cluster=client.scheduler.address, show_progress=False)
    monkeypatch.setattr(annotate_module, "write_part", real)
    assert len(parts_of(output)) == 2
    stats = run_annotate(trained_teacher, inputs, output, cluster=client.scheduler.address, show_progress=False)
    assert stats.chunks_reused == 2
    assert_same_output(output, reference)
    # the interrupted run's tasks were released on the cluster
    deadline = time.monotonic() + 10
    while _our_tasks(client) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _our_tasks(client)


def _our_tasks(client) -> list:
    return [key for key in client.run_on_scheduler(_task_keys) if str(key).startswith(TASK_PREFIX)]


def _task_keys(dask_scheduler=None) -> list:
    return list(dask_scheduler.tasks)


def test_a_single_process_run_resumes_cluster_chunks(trained_teacher, inputs, reference, client, tmp_path, monkeypatch):
    """The parts are the same either way, so a cluster run can be finished by one process."""
    import spacy_compact_ner.tools.annotate as annotate_module

    real = annotate_module.write_part
    calls = {"n": 0}

    def interrupt_on_fourth_part(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(annotate_module, "write_part", interrupt_on_fourth_part)
    output = tmp_path / "distill.spacy"
    with pytest.raises(KeyboardInterrupt):
        run_annotate(trained_teacher, inputs, output, cluster=client.scheduler.address, show_progress=False)
    monkeypatch.setattr(annotate_module, "write_part", real)
    stats = run_annotate(trained_teacher, inputs, output, show_progress=False)
    assert stats.chunks_reused == 3
    assert_same_output(output, reference)


def test_cluster_addresses_are_checked():
    assert parse_cluster("local:2") == ("local", 2)
    assert parse_cluster("tcp://10.0.0.1:8786") == ("tcp://10.0.0.1:8786", None)
    assert local_torch_threads("local:1") == (os.cpu_count() or 1)
    assert local_torch_threads("tcp://10.0.0.1:8786") is None
    for bad in ("local:0", "local:x", "local", " "):
        with pytest.raises(ClusterError, match="--cluster"):
            parse_cluster(bad)


def test_a_missing_extra_is_named(trained_teacher, inputs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ClusterError, match=r"spacy-compact-ner\[cluster\]"):
        run_annotate(trained_teacher, inputs, tmp_path / "o.spacy", cluster="local:2", show_progress=False)


def test_the_plain_annotate_path_imports_no_dask():
    code = (
        "import sys; import spacy_compact_ner.tools.cli, spacy_compact_ner.tools.annotate, "
        "spacy_compact_ner.tools.cluster; "
        "assert not {'dask', 'distributed'} & set(sys.modules), sorted({'dask', 'distributed'} & set(sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


class _Future:
    def __init__(self, result=None, error=None):
        self._result, self._error = result, error

    def result(self):
        if self._error:
            raise self._error
        return self._result


def test_a_worker_with_another_teacher_is_named():
    from spacy_compact_ner.tools.cluster import TeacherSpec, _chunk_result

    spec = TeacherSpec(paths=("/models/teacher",), component=None, gpu_id=-1, fingerprint="abc")
    good = {"logits": [numpy.zeros((2, 3), dtype="<f2")], "tags": ["O", "U-PER"], "fingerprint": "abc", "worker": "w1"}
    assert _chunk_result(_Future(good), 0, spec, ["O", "U-PER"]) is good["logits"]
    with pytest.raises(ClusterError, match="Worker w1 has other teacher files at .*/models/teacher"):
        _chunk_result(_Future({**good, "fingerprint": "xyz"}), 0, spec, ["O", "U-PER"])
    with pytest.raises(ClusterError, match="Worker w1's teacher has tags"):
        _chunk_result(_Future(good), 0, spec, ["O", "U-LOC"])
    with pytest.raises(ClusterError, match="Chunk 4 failed on the cluster \\(FileNotFoundError: no teacher"):
        _chunk_result(_Future(error=FileNotFoundError("no teacher")), 4, spec, ["O"])
