"""Every registered name resolves, and the shipped configs build and validate."""

import importlib
import subprocess
import sys
import tomllib

import pytest
import spacy
from spacy.util import load_config, load_model_from_config, registry

from tests.fixtures import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENTRY_POINTS = PYPROJECT["project"]["entry-points"]
REGISTERED = [
    (group.split("_", 1)[1], name, target)
    for group, names in ENTRY_POINTS.items()
    if group.startswith(("spacy_", "thinc_"))
    for name, target in names.items()
]


@pytest.mark.parametrize("group,name,target", REGISTERED)
def test_registered_names_resolve(group, name, target):
    if group == "factories":
        # Through the entry point alone, in a process that never imported spacy_compact_ner.
        code = (
            f"import spacy; nlp = spacy.blank('en'); nlp.add_pipe({name!r}); print(type(nlp.pipeline[0][1]).__name__)"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "CompactNER"
        return
    assert name.startswith("spacy-compact-ner.") and name.rsplit(".", 1)[-1].startswith("v")
    if group == "span_getters":
        importlib.import_module("spacy_transformers")  # it creates registry.span_getters
    # The entry point's target is the registered function (importing it registers the name even where
    # the installed entry points are older than pyproject.toml, e.g. an editable install).
    module, attr = target.split(":")
    function = getattr(importlib.import_module(module), attr)
    assert getattr(registry, group).get(name) is function


def test_student_config_builds_and_validates():
    config = load_config(ROOT / "configs" / "student.cfg")
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["ner"]
    assert nlp.get_pipe_meta("ner").factory == "compact_ner"
    importlib.import_module("spacy_compact_ner.tools.logger")  # as in test_registered_names_resolve
    spacy.util.resolve_dot_names(nlp.config, ["training.optimizer", "training.logger", "corpora.train", "corpora.dev"])


def test_teacher_config_builds_and_validates(tiny_bert):
    config = load_config(ROOT / "configs" / "teacher.cfg", overrides={"paths.teacher_encoder": str(tiny_bert)})
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["transformer", "ner"]


def test_config_overrides_reach_the_model():
    config = load_config(
        ROOT / "configs" / "student.cfg",
        overrides={"components.ner.model.tok2vec.width": 48, "components.ner.loss.temperature": 3.0},
    )
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    ner = nlp.get_pipe("ner")
    assert ner.loss.temperature == 3.0
    assert nlp.config["components"]["ner"]["model"]["tok2vec"]["width"] == 48


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"components.ner.loss.temperature": 0.0}, "temperature must be > 0"),
        ({"components.ner.loss.kd_weight": -1.0}, "kd_weight must be a finite number >= 0"),
        ({"components.ner.model.tok2vec.dilations": [1, 0]}, "dilations must be a non-empty list of positive"),
        ({"components.ner.model.tok2vec.rows": [100, 100]}, "one row count per attribute"),
        ({"components.ner.model.tok2vec.width": 0}, "width must be a positive integer"),
    ],
)
def test_bad_configs_fail_early_with_a_message(overrides, message):
    config = load_config(ROOT / "configs" / "student.cfg", overrides=overrides)
    with pytest.raises(ValueError, match=message):
        load_model_from_config(config, auto_fill=True, validate=True)


def test_unknown_architecture_is_reported():
    config = load_config(
        ROOT / "configs" / "student.cfg",
        overrides={"components.ner.model.tok2vec.@architectures": "spacy-compact-ner.Nope.v1"},
    )
    with pytest.raises(Exception, match="spacy-compact-ner.Nope.v1"):
        load_model_from_config(config, auto_fill=True, validate=True)
