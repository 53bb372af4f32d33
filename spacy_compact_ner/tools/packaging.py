"""Packaging the student: the meta that `spacy package` merges in, and a check that the built wheel
installs and runs by name in a fresh virtual environment with no torch."""
import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Optional, Sequence

from wasabi import msg

TEST_TEXT = "Barack Obama visited Paris with Angela Merkel on Monday ."


def write_package_meta(
    scores_path: Path,
    output: Path,
    *,
    name: str,
    version: str,
    description: str = "Compact ID-CNN NER distilled from a MiniLM teacher (spacy-compact-ner)",
    license: str = "MIT",
) -> dict:
    """Write the meta for `spacy package --meta-path`, with the test scores as ``performance``.

    scores_path (Path): JSON written by `spacy evaluate` on the test set.
    """
    scores = json.loads(Path(scores_path).read_text())
    performance = {key: value for key, value in scores.items() if key.startswith(("ents_", "token_", "speed"))}
    meta = {
        "name": name,
        "version": version,
        "description": description,
        "license": license,
        "author": "spacy-compact-ner",
        "performance": performance,
        "notes": "Scores in 'performance' are on the held-out test split (spacy evaluate).",
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(meta, indent=2))
    return meta


def verify_package(
    wheel: Path,
    *,
    find_links: Sequence[Path] = (),
    venv_dir: Path,
    package_name: str,
    test_data: Optional[Path] = None,
    output: Optional[Path] = None,
    pip_args: Sequence[str] = (),
) -> dict:
    """Install ``wheel`` into a new venv and load it by name there; torch must not be installed.

    wheel (Path): The built pipeline wheel.
    find_links (Sequence[Path]): Folders with wheels of its requirements (e.g. spacy-compact-ner's).
    venv_dir (Path): Where the fresh venv is made (replaced if present).
    package_name (str): The pipeline's name, e.g. ``en_compact_ner``.
    test_data (Optional[Path]): A .spacy file to evaluate the installed pipeline on.
    output (Optional[Path]): Where to write the check's results as JSON.
    """
    wheel = Path(wheel)
    if not wheel.is_file():
        raise FileNotFoundError(f"Pipeline wheel not found: {wheel}")
    msg.info(f"Creating a fresh virtual environment in {venv_dir}")
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    python = str(Path(venv_dir) / "bin" / "python")
    links = [arg for path in find_links for arg in ("--find-links", str(Path(path).resolve()))]
    msg.info(f"Installing {wheel.name} and its declared requirements only")
    _run([python, "-m", "pip", "install", "-q", *links, *pip_args, str(wheel.resolve())])
    probe = (
        "import importlib.util, json, spacy\n"
        f"nlp = spacy.load({package_name!r})\n"
        f"doc = nlp({TEST_TEXT!r})\n"
        "print(json.dumps({'torch_installed': importlib.util.find_spec('torch') is not None,"
        " 'spacy_transformers_installed': importlib.util.find_spec('spacy_transformers') is not None,"
        " 'pipeline': nlp.pipe_names, 'ents': [(e.text, e.label_) for e in doc.ents],"
        " 'meta_version': nlp.meta['version']}))\n"
    )
    result = json.loads(_run([python, "-c", probe]).strip().splitlines()[-1])
    if result["torch_installed"] or result["spacy_transformers_installed"]:
        raise RuntimeError(f"The student package pulled in torch or spacy-transformers: {result}")
    if test_data is not None:
        scores_path = Path(venv_dir) / "scores.json"
        _run([python, "-m", "spacy", "evaluate", package_name, str(test_data), "--output", str(scores_path)])
        scores = json.loads(scores_path.read_text())
        result["ents_f"] = scores["ents_f"]
        result["ents_p"] = scores["ents_p"]
        result["ents_r"] = scores["ents_r"]
    result["wheel"] = str(wheel)
    result["wheel_bytes"] = wheel.stat().st_size
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(result, indent=2))
    msg.good(f"{package_name} installs and loads alone (no torch): {result['ents']}")
    return result


def _run(cmd: Sequence[str]) -> str:
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        hint = " (installing requirements needs a reachable package registry)" if "pip" in cmd else ""
        raise RuntimeError(f"Command failed with exit code {done.returncode}{hint}: {' '.join(cmd)}")
    return done.stdout
