"""The README's results table: generated from metrics/benchmark.json, never typed."""

import json

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.report import (
    README_END,
    README_START,
    readme_block,
    readme_sizes,
    readme_table,
    replace_readme_block,
    stat,
    write_readme_table,
)
from benchmarks.tests.util import empty_report_args
from tests.fixtures import ROOT


def _row(size, system, f1s, n_labeled=None):
    return {
        "size": size,
        "n_labeled": n_labeled or size,
        "system": system,
        "n_seeds": len(f1s),
        "seeds": list(range(len(f1s))),
        "f1": stat(f1s),
    }


def _speed_system(words_per_second, parameters, vectors=0, model="elsewhere/model-best"):
    return {
        "model": model,
        "parameters": parameters,
        "vectors": vectors,
        "threads": {"1": {"pipeline_words_per_second": words_per_second}},
    }


def synthetic_report(with_speed: bool = True) -> dict:
    """A small report: one gold dataset (sizes 100, 500, all) and one silver one (500, 2000 at one seed)."""
    gold = [
        _row(size, system, f1s, n_labeled=1000 if size == "all" else None)
        for size in (100, 500, "all")
        for system, f1s in (
            ("teacher", [50.0, 52.0]),
            ("student_full", [40.0, 42.0]),
            ("student_gold", [30.0, 31.0]),
            ("spacy_ner", [20.0, 22.0]),
        )
    ]
    gold.append(_row(500, "spacy_ner_vectors", [35.0]))  # one seed of two
    gold.append(_row(500, "variant.tw_all", [47.0, 48.0]))  # the full student with real tweets
    silver = [_row(size, system, [60.0]) for size in (500, 2000) for system in ("teacher", "student_full")]
    speed = {
        "date": "2026-01-01T00:00:00+00:00",
        "text": {"n_words": 12345},
        "machine": {"cpu": "Test CPU", "cpus": 4},
        "systems": {
            "teacher": _speed_system(1000.0, 20_000_000),
            "student": _speed_system(
                15000.0, 1_000_000, vectors=500_000, model="training/benchmark/toy/n500-s0/student_full/model-best"
            ),
            "spacy_ner": _speed_system(7500.0, 1_500_000),
        },
    }
    return {
        "date": "2026-01-02T03:04:05+00:00",
        "cells": {"count": 17},
        "accuracy": {"toy": {"results": gold}, "toy_silver": {"results": silver}},
        "speed": speed if with_speed else None,
    }


def table_rows(table: str) -> dict:
    """First cell of each body row -> its other cells."""
    rows = [line.strip("|").split(" | ") for line in table.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_readme_table_renders_headline_rows():
    table = readme_table(synthetic_report())
    rows = table_rows(table)
    assert "2026-01-02T03:04:05+00:00" in table and "17 result files" in table and "generated" in table.lower()
    assert "the toy n500-s0 models" in table and "12,345 words" in table and "2026-01-01" in table
    # 500 and the largest size; 100 is left out
    assert list(rows) == [
        "toy, 500 labeled, test F1 (2 seeds)",
        "toy, all (1,000) labeled, test F1 (2 seeds)",
        "toy_silver (silver), 500 labeled, test F1 (1 seed)",
        "toy_silver (silver), 2,000 labeled, test F1 (1 seed)",
        "words/s, 1 thread",
        "parameters",
    ]
    teacher, student, tweets, gold, ner, vectors, ratio = rows["toy, 500 labeled, test F1 (2 seeds)"]
    assert (teacher, student, gold, ner) == ("51.0 ± 1.4", "41.0 ± 1.4", "30.5 ± 0.7", "21.0 ± 1.4")
    assert tweets == "47.5 ± 0.7"
    assert vectors == "35.0 (n=1)"  # fewer seeds than the row's
    assert ratio == "80%"  # 41 / 51
    all_row = rows["toy, all (1,000) labeled, test F1 (2 seeds)"]
    assert all_row[2] == all_row[5] == "—"  # not measured there
    assert rows["toy_silver (silver), 2,000 labeled, test F1 (1 seed)"] == ["60.0", "60.0", "—", "—", "—", "—", "100%"]
    assert rows["words/s, 1 thread"] == ["1,000", "15,000", "—", "—", "7,500", "—", "15.0x"]
    assert rows["parameters"] == ["20.00M", "1.00M + 0.5M vectors", "—", "—", "1.50M", "—", "1/20.0"]


def test_readme_table_without_speed_has_no_speed_rows():
    rows = table_rows(readme_table(synthetic_report(with_speed=False)))
    assert "words/s, 1 thread" not in rows and "parameters" not in rows
    assert len(rows) == 4


def test_readme_sizes():
    results = {"results": [_row(size, "teacher", [1.0]) for size in (100, 250, 2000)]}
    assert readme_sizes(results) == [2000]  # no 500 measured
    assert readme_sizes({"results": [_row(s, "teacher", [1.0]) for s in (100, 500, "all")]}) == [500, "all"]
    assert readme_sizes({"results": [_row(500, "teacher", [1.0])]}) == [500]
    assert readme_sizes({"results": []}) == []


def test_replace_readme_block_keeps_the_rest(tmp_path):
    text = f"# Title\n\nintro\n\n{README_START}\nold table\n{README_END}\n\nafter\n"
    updated = replace_readme_block(text, "| new |")
    assert updated == f"# Title\n\nintro\n\n{README_START}\n| new |\n{README_END}\n\nafter\n"
    assert readme_block(updated) == "| new |"
    assert replace_readme_block(updated, "| new |") == updated
    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert write_readme_table(readme, synthetic_report()) is True
    assert readme_block(readme.read_text()) == readme_table(synthetic_report())
    assert write_readme_table(readme, synthetic_report()) is False
    assert readme.read_text().endswith(f"{README_END}\n\nafter\n")


@pytest.mark.parametrize(
    "text", ["no markers", f"{README_END}\n{README_START}", f"{README_START}\n{README_START}\n{README_END}"]
)
def test_readme_block_needs_one_pair_of_markers(text):
    with pytest.raises(ValueError, match="results:start"):
        readme_block(text)


def test_readme_command_writes_and_checks(tmp_path):
    report = tmp_path / "benchmark.json"
    report.write_text(json.dumps(synthetic_report()))
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{README_START}\n{README_END}\n")
    runner = CliRunner()
    args = ["readme", "--benchmark-json", str(report), "--readme", str(readme)]
    assert runner.invoke(app, [*args, "--check"]).exit_code == 1
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert readme_block(readme.read_text()) == readme_table(synthetic_report())
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0
    report.write_text(json.dumps({"date": "x"}))
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "not a benchmark report" in result.output


def test_committed_readme_table_is_generated_from_committed_report():
    """Hand edits of the README's table, or a report regenerated without the README, fail here."""
    data = json.loads((ROOT / "metrics" / "benchmark.json").read_text(encoding="utf8"))
    block = readme_block((ROOT / "README.md").read_text(encoding="utf8"))
    assert block == readme_table(data), (
        "README.md's results table differs from metrics/benchmark.json: run `python -m benchmarks readme`"
    )


def test_report_command_writes_the_readme_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{README_START}\nstale\n{README_END}\n")
    result = CliRunner().invoke(app, empty_report_args(tmp_path, "--readme", str(readme)))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert readme_block(readme.read_text()) == readme_table(data)
    assert data["date"] in readme.read_text()


def test_report_command_readme_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, empty_report_args(tmp_path, "--readme", str(tmp_path / "absent.md")))
    assert missing.exit_code == 0 and (tmp_path / "b.json").is_file()  # a project copy without README: warned
    assert not (tmp_path / "absent.md").exists()
    unmarked = tmp_path / "README.md"
    unmarked.write_text("# no markers\n")
    result = runner.invoke(app, empty_report_args(tmp_path, "--readme", str(unmarked)))
    assert result.exit_code == 1
    assert unmarked.read_text() == "# no markers\n"
