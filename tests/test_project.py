"""Slow smoke test: the project workflow end to end with tiny vars, from a user's data to an installed wheel.

It runs every command of the `all` workflow except `assets` (the registry download) in a copy of the
project, twice, as a user with their own data would: JSONL train/dev/test files plus raw text with a tiny
generated BERT as the teacher, and one .spacy file (dev and test split off it) plus JSONL raw text with a
tiny generated RoBERTa. Each wheel is checked in a fresh venv from the package registries only (spacy there
from the registry, or pip's cache): no torch, no spacy-compact-ner. What `all` writes must be git-ignored
(results go to training/metrics/, not metrics/).
"""

import json
import shutil
import subprocess
import sys

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_compact_ner.tools.formats import read_labeled
from tests.fixtures import ROOT, make_tiny_bert, make_tiny_roberta, toy_words, write_tiny_glove

pytestmark = pytest.mark.slow

TINY_VARS = {
    "n_labeled": 50,
    "n_dev": 20,
    "n_test": 20,
    "teacher_epochs": 15,
    "teacher_batch_size": 100,
    "teacher_warmup_steps": 5,
    "teacher_total_steps": 1000,
    "teacher_learn_rate": 0.003,
    "student_epochs": 30,
    "summary_repeats": 1,
}
KEEP = ["project.yml", "pyproject.toml", "README.md", "configs", "spacy_compact_ner", "tests/data/own"]
OWN = "tests/data/own"
# How each run gives the workflow its data (README "Your own data"), and the package name it asks for.
RUNS = {
    "jsonl": {
        "train": f"{OWN}/train.jsonl",
        "dev": f"{OWN}/dev.jsonl",
        "test": f"{OWN}/test.jsonl",
        "unlabeled": f"{OWN}/texts.txt",
        "name": "my_ner",
        "teacher_encoder": "assets/tiny-bert",
    },
    "spacy": {
        "train": "assets/own/all.spacy",
        "unlabeled": "assets/own/texts.jsonl",
        "name": "compact_ner",
        "teacher_encoder": "assets/tiny-roberta",
    },
}


def write_spacy_inputs(root) -> None:
    """The example data as one .spacy file of labeled docs and a JSONL file of raw text."""
    nlp = spacy.blank("en")
    docs = [doc for split in ("train", "dev", "test") for doc in read_labeled(root / OWN / f"{split}.jsonl", nlp)[0]]
    (root / "assets" / "own").mkdir(parents=True)
    DocBin(docs=docs).to_disk(root / "assets" / "own" / "all.spacy")
    lines = (root / OWN / "texts.txt").read_text(encoding="utf8").splitlines()
    srsly.write_jsonl(root / "assets" / "own" / "texts.jsonl", [{"text": line} for line in lines])


@pytest.fixture(scope="module", params=sorted(RUNS))
def project(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"project-{request.param}") / "compact"
    root.mkdir()
    for name in KEEP:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy(source, root / name)
    make_tiny_bert(root / "assets" / "tiny-bert", toy_words())
    make_tiny_roberta(root / "assets" / "tiny-roberta", toy_words())
    write_tiny_glove(root / "assets" / "toy-glove", toy_words(), dims=8)
    write_spacy_inputs(root)
    variables = {**TINY_VARS, **RUNS[request.param], "glove": "assets/toy-glove"}
    overrides = [arg for key, value in variables.items() for arg in (f"--vars.{key}", str(value))]
    workflow = srsly.read_yaml(root / "project.yml")["workflows"]["all"]
    assert workflow[0] == "assets"
    package = f"en_{RUNS[request.param]['name']}"
    try:
        for command in workflow[1:]:
            subprocess.run(
                [sys.executable, "-m", "spacy", "project", "run", command, str(root), *overrides],
                check=True,
                cwd=root,
            )
        yield root, package
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", package], check=False)


def test_workflow_reads_the_users_data(project):
    root, _ = project
    stats = json.loads((root / "corpus" / "corpus_stats.json").read_text())
    formats = {name: read["format"] for name, read in stats["inputs"].items()}
    assert formats in ({"train": "jsonl", "dev": "jsonl", "test": "jsonl"}, {"train": "spacy"})
    assert stats["labels"] == ["LOC", "ORG", "PER"]
    assert [stats["splits"][s]["docs"] for s in ("train", "dev", "test")] == [50, 20, 20]
    unlabeled = stats["splits"]["unlabeled"]
    assert unlabeled["extra_docs"] > 0 and sum(unlabeled["dropped_as_labeled"].values()) > 0  # toy texts repeat


def test_workflow_builds_an_installable_student(project):
    root, name = project
    wheel = root / "packages" / f"{name}-0.1.0" / "dist" / f"{name}-0.1.0-py3-none-any.whl"
    assert wheel.is_file()
    package = json.loads((root / "training" / "metrics" / "package.json").read_text())
    assert package["torch_installed"] is False and package["spacy_transformers_installed"] is False
    # it installs alone: its runtime is vendored, the training distribution stays out of the fresh venv
    assert package["installed"] == {"torch": False, "spacy-transformers": False, "spacy-compact-ner": False}
    assert package["factory_module"] == f"{name}.component"
    assert not any(req.startswith(("spacy-compact-ner", "spacy_compact_ner")) for req in package["requirements"])
    assert package["pipeline"] == ["ner"]
    # nothing of the run lands in metrics/ (the committed benchmark results)
    assert [path for path in (root / "metrics").rglob("*") if path.is_file()] == []
    assert package["ents_f"] >= 0.8  # the installed package, evaluated on the toy test split


def test_installed_package_loads_by_name_in_a_new_process(project):
    root, name = project
    code = (
        f"import spacy, json; nlp = spacy.load({name!r}); "
        "doc = nlp('yesterday , Alice visited Paris for Acme Corp .'); "
        "from spacy.util import registry; "
        "print(json.dumps({'ents': [[e.text, e.label_] for e in doc.ents], 'f': nlp.meta['performance']['ents_f'], "
        "'vectors': list(nlp.vocab.vectors.shape), 'factory': registry.factories.get('compact_ner').__module__}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert ["Paris", "LOC"] in result["ents"]
    # here spacy-compact-ner is installed: the package's shim defers to it (no second compact_ner factory)
    assert result["factory"] == "spacy_compact_ner.component"
    # The student's static vectors travel inside the package (the GloVe source is not needed).
    assert result["vectors"] == [len({w.lower() for w in toy_words()}), 8]
    # The meta reports the test scores written by the evaluate step.
    assert result["f"] == json.loads((root / "training" / "metrics" / "student.json").read_text())["ents_f"]


def test_summary_table_compares_teacher_and_student(project):
    root, _ = project
    rows = json.loads((root / "training" / "metrics" / "summary.json").read_text())
    assert [r["system"] for r in rows] == ["teacher", "student"]
    for row in rows:
        assert row["parameters"] > 0 and row["disk_bytes"] > 0 and row["words_per_second"] > 0
    assert "| student |" in (root / "training" / "metrics" / "summary.md").read_text()


def test_project_paths_are_single_paths():
    """confection joins a list item that is only a variable with a following item that starts with one
    ("${vars.a}", "${vars.b}/x" -> "a, b/x"): every dep and output must stay one path."""
    from weasel.util import load_project_config

    config = load_project_config(ROOT)
    joined = [
        (cmd["name"], path)
        for cmd in config["commands"]
        for key in ("deps", "outputs")
        for path in cmd.get(key, [])
        if ", " in path
    ]
    assert joined == []


def test_all_workflow_writes_only_git_ignored_paths():
    """A run of `all` leaves the tracked files as they are: every output it declares is git-ignored
    (tracked files never are, by `git check-ignore`)."""
    from weasel.util import load_project_config

    config = load_project_config(ROOT)
    commands = {cmd["name"]: cmd for cmd in config["commands"]}
    outputs = [path for name in config["workflows"]["all"] for path in commands[name].get("outputs", [])]
    assert "training/metrics/student.json" in outputs and len(outputs) > 10
    done = subprocess.run(
        ["git", "check-ignore", "--verbose", "--non-matching", *outputs], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode in (0, 1), done.stderr
    not_ignored = [line.split("\t", 1)[1] for line in done.stdout.splitlines() if line.startswith("::")]
    assert not_ignored == []
