"""Config variants scored on dev (benchmarks.variants and the `variants` command)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.runner import Budget, Steps, override_value
from benchmarks.variants import (
    VariantsError,
    read_variants,
    run_variants,
    select_variants,
    variants_table,
)
from tests.fixtures import ROOT


def write_variants(path: Path, data) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


class FakeSteps(Steps):
    """Scores a variant by its learning rate, without training."""

    def __init__(self):
        super().__init__()
        self.trained = []

    def train(self, config, output, overrides, *, gpu_id, code=None):
        self.trained.append((Path(output).name, dict(overrides)))
        (Path(output) / "model-best").mkdir(parents=True)
        return 60.0

    def evaluate(self, model, data, output, *, gpu_id):
        rate = float(self.trained[-1][1].get("training.optimizer.learn_rate.initial_rate", 0.001))
        seed = int(self.trained[-1][1]["system.seed"])
        f = 100 * rate + 0.01 * seed
        return {"ents_f": f, "ents_p": f, "ents_r": f, "ents_per_type": {}}


@pytest.fixture
def files(tmp_path):
    for name in ("train.spacy", "dev.spacy", "model.cfg"):
        (tmp_path / name).write_text("x")
    variants = write_variants(
        tmp_path / "variants.json",
        {
            "base": {"note": "defaults", "overrides": {}},
            "fast": {"overrides": {"training.optimizer.learn_rate.initial_rate": 0.002}},
        },
    )
    return {
        "config": tmp_path / "model.cfg",
        "train": tmp_path / "train.spacy",
        "dev": tmp_path / "dev.spacy",
        "variants": variants,
        "metrics": tmp_path / "metrics",
        "work": tmp_path / "work",
    }


def _run(files, steps, variants=None, **kwargs):
    return run_variants(
        files["config"],
        variants or read_variants(files["variants"]),
        train=files["train"],
        dev=files["dev"],
        metrics_dir=files["metrics"],
        work_dir=files["work"],
        steps=steps,
        log=lambda _: None,
        **kwargs,
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not valid JSON"),
        ({}, "expected an object"),
        ({"a b": {"overrides": {}}}, "must be letters"),
        ({"x": {"overrides": {"--training.seed": 1}}}, "dotted config keys"),
        ({"x": {"overrides": {"seed": 1}}}, "dotted config keys"),
        ({"x": {"override": {}}}, "unknown field"),
        ({"x": {"overrides": [1]}}, "'overrides' object"),
        ({"x": {"overrides": {}, "augment_factor": -1}}, "integer >= 0"),
        ({"x": {"overrides": {}, "crossfit_folds": 1}}, "0 or an integer >= 2"),
        ({"x": {"overrides": {}, "unlabeled_text": "tweets.txt"}}, "list of file paths"),
        ({"x": {"overrides": {}, "unlabeled_text": ["a.txt"], "max_unlabeled": 0}}, "max_unlabeled must be"),
        ({"x": {"overrides": {}, "max_unlabeled": 10}}, "with unlabeled_text"),
    ],
)
def test_read_variants_rejects_bad_files(tmp_path, content, message):
    with pytest.raises(VariantsError, match=message):
        read_variants(write_variants(tmp_path / "v.json", content))
    with pytest.raises(VariantsError, match="not found"):
        read_variants(tmp_path / "missing.json")


def test_select_variants_names_unknown_ones(files):
    variants = read_variants(files["variants"])
    assert [v.name for v in select_variants(variants, [])] == ["base", "fast"]
    assert [v.name for v in select_variants(variants, ["fast"])] == ["fast"]
    with pytest.raises(VariantsError, match="nope"):
        select_variants(variants, ["nope"])
    aug = write_variants(
        files["variants"].with_name("aug.json"),
        {
            "a": {"overrides": {}},
            "x2": {"augment_factor": 2},
            "cf": {"crossfit_folds": 5},
            "t": {"unlabeled_text": ["t.txt"]},
        },
    )
    variants = read_variants(aug)
    assert [v.name for v in select_variants(variants, [], config_only=True)] == ["a"]  # x2, cf: benchmark grid only
    with pytest.raises(VariantsError, match="only the benchmark grid"):
        select_variants(variants, ["cf"], config_only=True)
    with pytest.raises(VariantsError, match="only the benchmark grid"):
        select_variants(variants, ["x2"], config_only=True)
    with pytest.raises(VariantsError, match="only the benchmark grid"):
        select_variants(variants, ["t"], config_only=True)
    with pytest.raises(VariantsError, match="only the benchmark grid"):
        run_variants(
            files["config"],
            variants,
            train=files["train"],
            dev=files["dev"],
            seeds=[0],
            metrics_dir=files["variants"].parent / "m",
            work_dir=files["variants"].parent / "w",
        )


def test_override_values_are_command_line_config_values():
    assert override_value(True) == "true"
    assert override_value(0.0001) == "0.0001"
    assert override_value([]) == "[]"
    assert override_value(["SHAPE", "PREFIX"]) == '["SHAPE", "PREFIX"]'
    assert override_value(None) == "null"
    assert override_value("assets/x") == "assets/x"


def test_runs_are_resumable_and_checked_against_the_variants(files):
    steps = FakeSteps()
    results = _run(files, steps, seeds=[0, 1], common={"training.max_epochs": 3})
    assert [r["variant"] for r in results] == ["base", "fast", "base", "fast"]
    assert [name for name, _ in steps.trained] == ["base-s0", "fast-s0", "base-s1", "fast-s1"]
    # the variant's overrides win over the common ones; data, seed and common overrides are passed
    assert steps.trained[1][1] == {
        "paths.train": str(files["train"]),
        "paths.dev": str(files["dev"]),
        "system.seed": 0,
        "training.max_epochs": 3,
        "training.optimizer.learn_rate.initial_rate": 0.002,
    }
    saved = json.loads((files["metrics"] / "fast-s1.json").read_text())
    assert saved["scores"]["ents_f"] == pytest.approx(0.21)
    assert saved["variant_overrides"] == {"training.optimizer.learn_rate.initial_rate": "0.002"}
    assert not (files["work"] / "fast-s1" / "model-best").exists()  # models are deleted unless kept

    again = FakeSteps()
    assert len(_run(files, again, seeds=[0, 1], common={"training.max_epochs": 3})) == 4
    assert again.trained == []

    with pytest.raises(VariantsError, match="other common overrides"):
        _run(files, FakeSteps(), seeds=[0], common={"training.max_epochs": 4})
    write_variants(
        files["variants"],
        {"base": {"overrides": {}}, "fast": {"overrides": {"training.optimizer.learn_rate.initial_rate": 0.003}}},
    )
    with pytest.raises(VariantsError, match="delete the file"):
        _run(files, FakeSteps(), seeds=[0], common={"training.max_epochs": 3})


def test_budget_stops_between_runs(files):
    steps = FakeSteps()
    results = _run(files, steps, seeds=[0, 1], budget=Budget(max_results=3))
    assert len(results) == 3 and len(steps.trained) == 3
    assert not (files["metrics"] / "fast-s1.json").exists()


def test_table_has_a_row_per_variant_with_mean_and_std(files):
    variants = read_variants(files["variants"])
    results = _run(files, FakeSteps(), seeds=[0, 1])
    table = variants_table(variants, results[:3], [0, 1])
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "| 10.0 | 11.0 | 10.5 ± 0.7 |" in rows["base"]  # F1 0.10 (seed 0) and 0.11 (seed 1)
    assert "| 20.0 | - | 20.0 |" in rows["fast"]  # seed 1 not measured
    assert "`initial_rate=0.002`" in rows["fast"] and "(defaults)" in rows["base"]


def test_missing_inputs_are_named(files):
    with pytest.raises(VariantsError, match="dev data not found"):
        run_variants(
            files["config"],
            read_variants(files["variants"]),
            train=files["train"],
            dev=files["dev"].with_name("nope.spacy"),
            seeds=[0],
            metrics_dir=files["metrics"],
            work_dir=files["work"],
            steps=FakeSteps(),
        )


def test_cli_trains_a_student_variant_on_the_toy_corpus(toy_corpus, tmp_path):
    """The real command: one tiny student variant (a list override) trained and scored on dev; the table
    lists every variant of the file and every seed found on disk; a rerun trains nothing."""
    variants = write_variants(
        tmp_path / "variants.json",
        {
            "base": {"overrides": {}},
            "narrow": {
                "note": "fewer hash rows",
                "overrides": {"components.ner.model.tok2vec.rows": [300, 100, 100, 50]},
            },
        },
    )
    common = [
        "components.ner.model.tok2vec.include_static_vectors=false",
        "components.ner.model.tok2vec.width=32",
        "components.ner.model.tok2vec.rows=[500,200,200,100]",
        "components.ner.model.tok2vec.n_iter=2",
        "training.max_epochs=3",
        "training.eval_frequency=5",
        "training.logger.progress_bar=false",
    ]
    args = [
        "variants",
        str(ROOT / "configs" / "student.cfg"),
        str(variants),
        "--train",
        str(toy_corpus["train"]),
        "--dev",
        str(toy_corpus["dev"]),
        "--metrics-dir",
        str(tmp_path / "m"),
        "--work-dir",
        str(tmp_path / "w"),
        "--markdown",
        str(tmp_path / "table.md"),
    ]
    for item in common:
        args += ["--set", item]
    narrow = args + ["--only", "narrow"]
    result = CliRunner().invoke(app, narrow)
    assert result.exit_code == 0, result.output
    assert "1 of 1 runs measured" in result.output
    saved = json.loads((tmp_path / "m" / "narrow-s0.json").read_text())
    assert 0.0 <= saved["scores"]["ents_f"] <= 1.0 and saved["train_seconds"] > 0
    log = (tmp_path / "w" / "narrow-s0" / "train.log").read_text()
    assert "--components.ner.model.tok2vec.rows [300, 100, 100, 50]" in log
    table = (tmp_path / "table.md").read_text()
    assert "| base |" in table and "| narrow |" in table and "fewer hash rows" in table

    # a result of another seed, as an earlier run would have left it: the next table shows it too
    (tmp_path / "m" / "narrow-s1.json").write_text(json.dumps({**saved, "seed": 1}))
    rerun = CliRunner().invoke(app, narrow)
    assert rerun.exit_code == 0 and "1 of 1 runs measured" in rerun.output and "training" not in rerun.output
    table = (tmp_path / "table.md").read_text()
    assert "dev F1 s0 | dev F1 s1" in table
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert "| - | - | - |" in rows["base"]  # listed, not measured
    f1 = f"{100 * saved['scores']['ents_f']:.1f}"
    assert f"| {f1} | {f1} | {f1} ± 0.0 |" in rows["narrow"]
    bad = CliRunner().invoke(app, args + ["--only", "wide"])
    assert bad.exit_code == 1 and "unknown variant" in bad.output


@pytest.mark.parametrize("name", ["teacher", "student"])
def test_shipped_variants_override_existing_settings(name):
    """Every override in configs/<name>_variants.json names a setting of configs/<name>.cfg, and a
    variant's own training set is an output of a project command (so the README's commands make it)."""
    from spacy.util import load_config
    from weasel.util import load_project_config

    config = load_config(ROOT / "configs" / f"{name}.cfg", interpolate=False)
    outputs = {path for cmd in load_project_config(ROOT)["commands"] for path in cmd.get("outputs", [])}
    for variant in read_variants(ROOT / "configs" / f"{name}_variants.json"):
        for key, value in variant.overrides.items():
            node = config
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{variant.name}: no setting {key} in {name}.cfg"
                node = node[part]
            if key == "paths.train":
                assert value in outputs, f"{variant.name}: {value} is made by no project command"


def test_variant_speed_times_untrained_variants(toy_corpus, tmp_path):
    """`benchmark variant-speed`: each variant is initialized (not trained) and timed by the speed worker;
    parameters follow the overrides, dev F1 come from the variants' results, a missing input is named."""
    variants = write_variants(
        tmp_path / "variants.json",
        {
            "small": {"overrides": {"components.ner.model.tok2vec.width": 16}},
            "large": {"note": "wider", "overrides": {"components.ner.model.tok2vec.width": 64}},
        },
    )
    dev_metrics = tmp_path / "dev"
    dev_metrics.mkdir()
    (dev_metrics / "large-s0.json").write_text(
        json.dumps({"variant_overrides": {"components.ner.model.tok2vec.width": "64"}, "scores": {"ents_f": 0.5}})
    )
    args = [
        "variant-speed",
        str(ROOT / "configs" / "student.cfg"),
        str(variants),
        "--init-data",
        str(toy_corpus["train"]),
        "--texts",
        str(toy_corpus["dev"]),
        "--set",
        "components.ner.model.tok2vec.include_static_vectors=false",
        "--set",
        "components.ner.model.tok2vec.rows=[500,200,200,100]",
        "--dev-metrics",
        str(dev_metrics),
        "--min-words",
        "200",
        "--repeats",
        "2",
        "--warmup-docs",
        "8",
        "--batch-size",
        "16",
        "--output",
        str(tmp_path / "speed.json"),
        "--markdown",
        str(tmp_path / "speed.md"),
        "--work-dir",
        str(tmp_path / "work"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "speed.json").read_text())
    rows = {row["variant"]: row for row in data["variants"]}
    assert list(rows) == ["small", "large"] and data["text"]["n_words"] >= 200
    assert 0 < rows["small"]["parameters"] < rows["large"]["parameters"] and rows["small"]["vectors"] == 0
    assert all(row["threads"]["1"]["words_per_second"] > 0 for row in rows.values())
    table = (tmp_path / "speed.md").read_text()
    assert "| small | `width=16` |" in table and "| 50.0 (1) |" in table
    missing = CliRunner().invoke(
        app, [a if a != str(toy_corpus["train"]) else str(tmp_path / "nope.spacy") for a in args]
    )
    assert missing.exit_code == 1 and "nope.spacy" in missing.output

    # --only re-times some variants and keeps the others' rows when timed the same way; never loses them silently
    again = CliRunner().invoke(app, args + ["--only", "small"])
    assert again.exit_code == 0 and "kept the earlier timings of large" in again.output, again.output
    merged = json.loads((tmp_path / "speed.json").read_text())
    assert [row["variant"] for row in merged["variants"]] == ["small", "large"]
    assert merged["variants"][1] == rows["large"] and merged["variants"][0]["date"] > rows["small"]["date"]
    other = CliRunner().invoke(app, args + ["--repeats", "3", "--only", "small"])  # another protocol
    assert other.exit_code == 0 and "dropped the earlier timings of large" in other.output, other.output
    assert [row["variant"] for row in json.loads((tmp_path / "speed.json").read_text())["variants"]] == ["small"]
    # timings of other package code are not kept either (the file as an earlier version of the code wrote it)
    assert CliRunner().invoke(app, args).exit_code == 0
    earlier = json.loads((tmp_path / "speed.json").read_text())
    assert len(earlier["code_sha256"]) == 64
    (tmp_path / "speed.json").write_text(json.dumps({**earlier, "code_sha256": "0" * 64}))
    newer = CliRunner().invoke(app, args + ["--only", "small"])
    assert newer.exit_code == 0 and "dropped the earlier timings of large" in newer.output, newer.output
