"""spacy-compact-ner.ConsoleLogger.v1: spaCy's console table with a loss column per loss term."""

import io

import pytest
import srsly
from spacy.util import registry

import spacy_compact_ner.tools.logger  # noqa: F401 - registers the logger (the entry point may be older)
from tests.util import student_nlp

LOGGER = "spacy-compact-ner.ConsoleLogger.v1"
SCORES = {"ents_f": 0.5, "ents_p": 0.25, "ents_r": 1.0}


def _info(losses):
    return {"epoch": 1, "step": 200, "score": 0.5, "other_scores": SCORES, "losses": losses}


def _run(nlp, infos, **settings):
    stdout, stderr = io.StringIO(), io.StringIO()
    log_step, finalize = registry.loggers.get(LOGGER)(**settings)(nlp, stdout, stderr)
    for info in infos:
        log_step(info)
    finalize()
    return [line.split() for line in stdout.getvalue().splitlines()]


def test_a_column_per_loss_term(tmp_path):
    nlp = student_nlp()
    losses = {"ner": 3.0, "ner_gold": 1.0, "ner_kd": 1.5, "ner_pseudo_label": 0.5}
    log = tmp_path / "log.jsonl"
    header, rule, row = _run(nlp, [None, _info(losses)], output_file=str(log))[-3:]
    # spaCy shortens a column name to 13 characters.
    assert header == [
        "E",
        "#",
        "LOSS",
        "NER",
        "LOSS",
        "NER_GOLD",
        "LOSS",
        "NER_KD",
        "LOSS",
        "NER_P...",
        "ENTS_F",
        "ENTS_P",
        "ENTS_R",
        "SCORE",
    ]
    assert row == ["1", "200", "3.00", "1.00", "1.50", "0.50", "50.00", "25.00", "100.00", "0.50"]
    assert srsly.read_jsonl(log).__next__()["losses"] == losses


def test_one_loss_term_is_spacys_table():
    nlp = student_nlp(**{"components.ner.loss.kd_weight": 0.0, "components.ner.loss.pseudo_label_weight": 0.0})
    ours = _run(nlp, [_info({"ner": 2.0})])
    spacys = io.StringIO()
    log_step, _ = registry.loggers.get("spacy.ConsoleLogger.v3")()(nlp, spacys, io.StringIO())
    log_step(_info({"ner": 2.0}))
    assert ours == [line.split() for line in spacys.getvalue().splitlines()]


def test_a_term_missing_from_the_losses_shows_zero():
    nlp = student_nlp(**{"components.ner.loss.kd_weight": 0.0})
    header, _, row = _run(nlp, [_info({"ner": 2.0, "ner_gold": 2.0})])
    assert "NER_P..." in header and "NER_KD" not in header
    assert row[2:5] == ["2.00", "2.00", "0.00"]


def test_frozen_components_get_no_term_columns():
    nlp = student_nlp(**{"training.frozen_components": ["ner"]})
    header, _, _ = _run(nlp, [_info({"ner": 0.0})])
    assert header[:4] == ["E", "#", "LOSS", "NER"] and "NER_GOLD" not in header


@pytest.mark.parametrize("value,expected", [(True, "eval"), (False, None), ("train", "train"), ("eval", "eval")])
def test_progress_bar_settings_resolve_from_config(value, expected, monkeypatch):
    seen = {}
    real_get = registry.loggers.get
    spacy_v3 = real_get("spacy.ConsoleLogger.v3")

    def spy(**settings):
        seen.update(settings)
        return spacy_v3(**settings)

    monkeypatch.setattr(
        registry.loggers, "get", lambda name: spy if name == "spacy.ConsoleLogger.v3" else real_get(name)
    )
    registry.resolve({"logger": {"@loggers": LOGGER, "progress_bar": value}})
    assert seen["progress_bar"] == expected


def test_bad_progress_bar_is_a_clear_error():
    with pytest.raises(ValueError, match='progress_bar must be true, false, "eval" or "train", got \'steps\''):
        registry.loggers.get(LOGGER)(progress_bar="steps")
