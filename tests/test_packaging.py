"""The student's pipeline package: runtime vendored, requirements from pyproject, a shim that defers to an
installed spacy-compact-ner and otherwise registers the vendored copy (subprocesses, so that this
process's registry stays as it is)."""

import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile

import numpy
import pytest
import spacy
import srsly
from packaging.requirements import Requirement
from spacy.util import load_config
from typer.testing import CliRunner

from spacy_compact_ner.tools.cli import app
from spacy_compact_ner.tools.packaging import (
    SHIM_NAME,
    PackagingError,
    build_wheel,
    check_config_functions,
    check_vendorable,
    declared_requirements,
    keep_vector_strings,
    merge_requirements,
    package,
    runtime_modules,
    runtime_requirements,
    write_package_meta,
)
from tests.fixtures import ROOT
from tests.util import student_nlp, toy_examples, train

TEXT = "yesterday , Alice visited Paris for Acme Corp ."
SCORES = {"ents_f": 0.5, "ents_p": 0.6, "ents_r": 0.4, "ents_per_type": {}, "speed": 1000.0, "tag_acc": None}

# Hides the installed spacy-compact-ner from a subprocess: its modules cannot be imported and its metadata
# (requirements, entry points) is not found, as on a machine where only the pipeline wheel is installed.
HIDE_DISTRIBUTION = """
import importlib.abc, importlib.machinery, sys

class HideRuntime(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "spacy_compact_ner":
            raise ModuleNotFoundError(f"hidden: {name}", name=name)
        return None

sys.meta_path.insert(0, HideRuntime())
_find_distributions = importlib.machinery.PathFinder.find_distributions

def find_distributions(*args, **kwargs):
    for dist in _find_distributions(*args, **kwargs):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") != "spacy-compact-ner":
            yield dist

importlib.machinery.PathFinder.find_distributions = find_distributions
"""

LOAD_BY_IMPORT = """
import importlib.metadata, json, sys
sys.path.insert(0, sys.argv[1])
import en_compact_ner
from spacy.util import registry

try:
    importlib.metadata.distribution("spacy-compact-ner")
    dist_visible = True
except importlib.metadata.PackageNotFoundError:
    dist_visible = False
nlp = en_compact_ner.load()
doc = nlp(sys.argv[2])
print(json.dumps({
    "dist_visible": dist_visible,
    "factory_module": registry.factories.get("compact_ner").__module__,
    "architecture_module": registry.architectures.get("spacy-compact-ner.IDCNN.v1").__module__,
    "runtime_imported": sorted(m for m in sys.modules if m.split(".")[0] == "spacy_compact_ner"),
    "vendored_imported": sorted(m for m in sys.modules if m.startswith("en_compact_ner.")),
    "sys_path": sys.path,
    "ents": [[e.text, e.label_] for e in doc.ents],
}))
"""


def run_python(code: str, *args: str, cwd, pythonpath=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this environment; PYTHONPATH only as given."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env)


def last_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A tiny trained student saved to disk, and its entities on TEXT."""
    nlp = student_nlp()
    train(nlp, toy_examples(nlp), steps=15)
    path = tmp_path_factory.mktemp("student") / "model-best"
    nlp.to_disk(path)
    return path, [[e.text, e.label_] for e in spacy.load(path)(TEXT).ents]


@pytest.fixture(scope="module")
def packaged(student, tmp_path_factory):
    root = tmp_path_factory.mktemp("packaged")
    (root / "scores.json").write_text(json.dumps(SCORES))
    meta_path = root / "package_meta.json"
    write_package_meta(root / "scores.json", meta_path, name="compact_ner", version="0.0.1")
    return package(student[0], root / "packages", meta_path=meta_path, wheel=False)


def requirement_names(requirements):
    return {Requirement(req).name.lower() for req in requirements}


def test_meta_requires_the_runtime_requirements_not_the_distribution(packaged):
    meta = packaged.meta
    assert packaged.package_dir.name == "en_compact_ner-0.0.1" and packaged.name == "en_compact_ner"
    names = requirement_names(meta["requirements"])
    assert "spacy-compact-ner" not in names and "spacy_compact_ner" not in names
    assert {"spacy", "thinc", "numpy"} <= names
    assert not names & {"torch", "spacy-transformers", "typer", "pyarrow"}
    # the specifiers are pyproject's
    declared = {req.name: str(req) for req in declared_requirements()}
    assert declared["spacy"] in meta["requirements"]
    assert meta["performance"]["ents_f"] == SCORES["ents_f"]
    # the meta spaCy loads from the folder and the one setup.py builds from are the same
    module_dir = packaged.package_dir / packaged.name
    for path in (module_dir / "meta.json", module_dir / "en_compact_ner-0.0.1" / "meta.json"):
        assert json.loads(path.read_text()) == json.loads((packaged.package_dir / "meta.json").read_text())


def test_package_vendors_every_runtime_module_and_one_shim(packaged):
    module_dir = packaged.package_dir / packaged.name
    shipped = {path.name for path in module_dir.glob("*.py")}
    runtime = {path.name for path in runtime_modules()}
    assert runtime and "component.py" in runtime and "__init__.py" not in runtime
    assert shipped == runtime | {"__init__.py", f"{SHIM_NAME}.py"}
    assert f"from . import {SHIM_NAME}" in (module_dir / "__init__.py").read_text()


def test_shim_defers_to_the_installed_distribution(packaged, student, tmp_path):
    result = last_json(run_python(LOAD_BY_IMPORT, str(packaged.package_dir), TEXT, cwd=tmp_path, pythonpath=ROOT))
    assert result["dist_visible"] is True
    assert result["factory_module"] == "spacy_compact_ner.component"
    assert result["vendored_imported"] == [f"en_compact_ner.{SHIM_NAME}"]  # the shim only
    assert result["ents"] == student[1]


def test_shim_registers_the_vendored_runtime_when_the_distribution_is_missing(packaged, student, tmp_path):
    result = last_json(run_python(HIDE_DISTRIBUTION + LOAD_BY_IMPORT, str(packaged.package_dir), TEXT, cwd=tmp_path))
    assert str(ROOT) not in result["sys_path"]  # and the working directory ("") is tmp_path
    assert result["dist_visible"] is False
    assert result["runtime_imported"] == []
    assert result["factory_module"] == "en_compact_ner.component"
    assert result["architecture_module"] == "en_compact_ner.idcnn"
    assert result["ents"] == student[1]


@pytest.mark.parametrize(
    "first,second", [("spacy_compact_ner", "en_compact_ner"), ("en_compact_ner", "spacy_compact_ner")]
)
def test_vendored_and_installed_runtime_conflict(packaged, tmp_path, first, second):
    """Why the shim defers: both copies registering the factory is spaCy's E004, in either order."""
    code = (
        f"import sys; sys.path.insert(0, {str(packaged.package_dir)!r})\n"
        f"import {first}.component\n"
        f"import {second}.component\n"
    )
    done = run_python(code, cwd=tmp_path, pythonpath=ROOT)
    assert done.returncode != 0 and "E004" in done.stderr and "compact_ner" in done.stderr


def test_built_wheel_ships_the_runtime_and_requires_no_distribution(packaged, tmp_path):
    wheel = build_wheel(packaged.package_dir, tmp_path / "dist")
    assert wheel.name == "en_compact_ner-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read("en_compact_ner-0.0.1.dist-info/METADATA").decode()
    assert {f"en_compact_ner/{path.name}" for path in runtime_modules()} <= names
    assert f"en_compact_ner/{SHIM_NAME}.py" in names
    required = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert sorted(required) == sorted(packaged.meta["requirements"])
    # built again: the same name, replaced
    assert build_wheel(packaged.package_dir, tmp_path / "dist") == wheel and len(list(wheel.parent.iterdir())) == 1


def test_the_package_ships_only_the_strings_of_its_vectors(packaged, student, tmp_path):
    trained = srsly.read_json(student[0] / "vocab" / "strings.json")
    data = packaged.package_dir / "en_compact_ner" / "en_compact_ner-0.0.1"
    shipped = srsly.read_json(data / "vocab" / "strings.json")
    assert len(trained) > 50 and shipped == []  # no static vectors here; the entities are the same (tests above)

    nlp = spacy.blank("en")
    for word in ("apple", "banana", "cherry"):
        nlp.vocab.strings.add(word)
    nlp.vocab.set_vector("apple", numpy.ones(4, dtype="float32"))
    nlp.vocab.set_vector("cherry", numpy.zeros(4, dtype="float32"))
    nlp.to_disk(tmp_path / "p")
    assert keep_vector_strings(tmp_path / "p" / "vocab")[0] == 2
    assert sorted(srsly.read_json(tmp_path / "p" / "vocab" / "strings.json")) == ["apple", "cherry"]
    loaded = spacy.load(tmp_path / "p")
    assert loaded.vocab.strings[loaded.vocab.vectors.find(row=0)] == "apple"
    assert loaded("banana apple")[1].vector.sum() == 4.0


def test_package_refuses_to_overwrite_without_force(packaged, student):
    with pytest.raises(PackagingError, match="spacy package failed"):
        package(
            student[0], packaged.package_dir.parent, meta_path=None, name="compact_ner", version="0.0.1", wheel=False
        )


def test_package_cli_writes_the_folder(student, tmp_path):
    result = CliRunner().invoke(
        app, ["package", str(student[0]), str(tmp_path), "--name", "cli_ner", "--version", "1.2.3", "--no-wheel"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "en_cli_ner-1.2.3" / "meta.json").read_text())
    assert meta["name"] == "cli_ner" and "spacy-compact-ner" not in requirement_names(meta["requirements"])
    assert not (tmp_path / "en_cli_ner-1.2.3" / "dist").exists()
    missing = CliRunner().invoke(app, ["package", str(tmp_path / "nothing"), str(tmp_path)])
    assert missing.exit_code == 1 and "Not a saved spaCy pipeline" in missing.output


def test_runtime_requirements_are_the_declared_ones_of_its_imports(tmp_path):
    requirements = runtime_requirements(runtime_modules())
    declared = {req.name: str(req) for req in declared_requirements()}
    assert requirements == [declared[name] for name in ("numpy", "spacy", "thinc")]
    module = tmp_path / "uses_numpy.py"
    module.write_text("import os\nfrom typing import List\nimport numpy.linalg\nimport spacy\n")
    assert runtime_requirements([module]) == [declared["numpy"], declared["spacy"]]


@pytest.mark.parametrize(
    "source,message",
    [
        ("import spacy\nimport pytest\n", "does not declare"),  # a dev extra, not a runtime dependency
        ("import spacy\nimport not_a_module_anywhere\n", "no installed distribution"),
        ("import numpy\n", "does not import spacy"),
    ],
)
def test_runtime_requirements_reject_undeclared_imports(tmp_path, source, message):
    module = tmp_path / "mod.py"
    module.write_text(source)
    with pytest.raises(PackagingError, match=message):
        runtime_requirements([module])


def test_declared_requirements_leave_out_the_extras():
    everything = {Requirement(line).name for line in importlib.metadata.requires("spacy-compact-ner")}
    assert {"torch", "spacy-transformers", "pytest"} <= everything  # the teacher and dev extras
    names = {req.name for req in declared_requirements()}
    assert "spacy" in names and not names & {"torch", "spacy-transformers", "pytest"}


@pytest.mark.parametrize(
    "source,ok",
    [
        ("from .decoding import viterbi\nfrom . import store\n", True),
        ("from .tools.teacher import build\n", False),
        ("from ..other import x\n", False),
        ("import spacy_compact_ner.decoding\n", False),
    ],
)
def test_check_vendorable(tmp_path, source, ok):
    (tmp_path / "decoding.py").write_text("")
    (tmp_path / "store.py").write_text("")
    (tmp_path / "mod.py").write_text(source)
    modules = sorted(tmp_path.glob("*.py"))
    if ok:
        check_vendorable(modules)
    else:
        with pytest.raises(PackagingError, match="cannot be vendored"):
            check_vendorable(modules)


def test_config_with_a_tools_function_cannot_be_packaged(student):
    config = load_config(student[0] / "config.cfg")
    check_config_functions(config, runtime_modules())
    tok2vec = config["components"]["ner"]["model"]["tok2vec"]
    tok2vec.clear()
    tok2vec["@architectures"] = "spacy-compact-ner.TransformerWithFeatures.v1"
    with pytest.raises(PackagingError, match="TransformerWithFeatures"):
        check_config_functions(config, runtime_modules())


def test_merge_requirements():
    merged = merge_requirements(
        ["spacy-compact-ner>=0.1.0,<0.2.0", "spacy>=3.8.0,<3.9.0", "spacy-lookups-data>=1"],
        ["numpy>=1.24", "spacy<3.9,>=3.8"],
    )
    assert merged == ["spacy-lookups-data>=1", "numpy>=1.24", "spacy<3.9,>=3.8"]
