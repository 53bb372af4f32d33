"""What a student or teacher was trained with, as one digest: the sections of spaCy's filled config (every
default written out) that decide the model, so that a changed default in a config file trains again what ran
the old one, while a changed comment, a new setting at its old default or another cell's files do not."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple

import srsly

from .common import result_files, write_json
from .runner import PER_CELL_OVERRIDES

# What differs per cell by design or does not change the model: where its files are, the seed, the dev
# interval (the selection rule, recorded and checked on its own), logging, the time cap's callback.
SKIPPED_OVERRIDES = ("training.before_update", "training.logger")
SKIPPED_TRAINING = ("logger", "before_update", "eval_frequency", "seed", "gpu_allocator", "dev_corpus", "train_corpus")
# Paths that building the pipeline needs as a string (the teacher's encoder: a name its transformer reads
# only when initialized): a stand-in where the config leaves them null. Paths are not in the digest.
STAND_IN_PATHS = {"teacher_encoder": "encoder"}


def settings_digest(config_text: str, overrides: Mapping[str, object]) -> str:
    """sha256 of the filled ``components``, ``training`` (less `SKIPPED_TRAINING`) and training reader (less
    its path) of ``config_text`` with ``overrides`` (values as given or as results record them: strings
    are read as ``spacy train`` reads its command line)."""
    kept = tuple(sorted((key, _value(value)) for key, value in overrides.items() if _decides_model(key)))
    return _digest(config_text, json.dumps(kept))


def settings_digest_of_file(config: Path, overrides: Mapping[str, object]) -> str:
    return settings_digest(Path(config).read_text(encoding="utf8"), overrides)


def _decides_model(key: str) -> bool:
    if key.startswith("paths.") or key in PER_CELL_OVERRIDES:
        return False
    return not any(key == skipped or key.startswith(skipped + ".") for skipped in SKIPPED_OVERRIDES)


def _value(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return srsly.json_loads(value)
    except ValueError:
        return value


@lru_cache(maxsize=256)
def _digest(config_text: str, overrides_json: str) -> str:
    from spacy.util import load_model_from_config
    from thinc.api import Config

    import spacy_compact_ner  # noqa: F401  (registers the student's functions)

    overrides: Dict[str, object] = dict(tuple(pair) for pair in json.loads(overrides_json))  # type: ignore[misc]
    paths = Config().from_str(config_text, interpolate=False).get("paths", {})
    for name, stand_in in STAND_IN_PATHS.items():
        if name in paths and paths[name] is None:
            overrides[f"paths.{name}"] = stand_in
    config = Config().from_str(config_text, overrides=overrides, interpolate=False)
    filled = load_model_from_config(config, auto_fill=True, validate=False).config.interpolate()
    training = {key: value for key, value in filled["training"].items() if key not in SKIPPED_TRAINING}
    reader = {key: value for key, value in filled["corpora"]["train"].items() if key != "path"}
    payload: Tuple = (filled["components"], training, reader)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def ran_earlier_settings(cell: dict) -> bool:
    """Whether a result recorded a settings digest that its config file, as it is now, no longer gives
    with the result's own overrides: it ran an earlier default of that file (False where unknown: no
    digest recorded, or the file is gone)."""
    config = cell.get("config") or {}
    recorded, path = config.get("settings_sha256"), Path(config.get("file") or "")
    if not recorded or not path.is_file():
        return False
    return settings_digest_of_file(path, config.get("overrides") or {}) != recorded


# The built-in systems trained from the project's configs (spaCy's baselines: the config `spacy init config` writes)
DIGEST_SYSTEMS = ("teacher", "student_full", "student_kd", "student_gold")


def has_settings_digest(system: str) -> bool:
    """Whether the grid records a settings digest for ``system``: `DIGEST_SYSTEMS` and the student and
    teacher variants."""
    from . import teacher_variant_of, variant_of

    return system in DIGEST_SYSTEMS or bool(variant_of(system) or teacher_variant_of(system))


def backfill_settings(
    metrics_dir: Path,
    *,
    datasets: Sequence[str] = (),
    work_dir: Optional[Path] = None,
    log: Callable[[str], None] = print,
) -> tuple:
    """Add ``config.settings_sha256`` to student and teacher results written without it: the digest of the
    version of their config file they ran (its recorded sha256, from the file or its git history) with their
    recorded overrides. Skips a result with no such version. With ``work_dir``, also the ``train_done.json``
    of models on disk trained without it (what lets the grid reuse a teacher instead of training it again):
    they record no sha256, so their config is the version committed last before their date (edits not
    committed then are not seen). RETURNS (added, skipped), result files and markers together."""
    from .selection import config_version

    def results() -> Iterator[Tuple[Path, dict, dict, str, Optional[str]]]:
        for path, cell in result_files(metrics_dir, datasets):
            config = cell.get("config") or {}
            if has_settings_digest(cell.get("system", "")) and "settings_sha256" not in config:
                text = config_version(Path(config["file"]), config.get("sha256"))
                yield path, cell, config, f"no version of {config['file']} with the recorded sha256", text

    def markers() -> Iterator[Tuple[Path, dict, dict, str, Optional[str]]]:
        for path in sorted(Path(work_dir).glob("*/n*-s*/*/train_done.json")) if work_dir is not None else ():
            if (datasets and path.parent.parent.parent.name not in datasets) or not has_settings_digest(
                path.parent.name
            ):
                continue
            done = json.loads(path.read_text(encoding="utf8"))
            if "settings_sha256" not in done:
                why = f"no committed version of {done['config']} before {done.get('date')}"
                yield path, done, done, why, _committed_before(Path(done["config"]), done.get("date", ""))

    added = skipped = 0
    for found in (results(), markers()):
        for path, data, holder, why, text in found:
            if text is None:
                log(f"[settings] {path}: {why}, skipped")
                skipped += 1
                continue
            holder["settings_sha256"] = settings_digest(text, holder.get("overrides") or {})
            write_json(path, data)
            added += 1
    return added, skipped


def _committed_before(path: Path, date: str) -> Optional[str]:
    """The text of ``path`` in the last commit before ``date`` (ISO 8601) that touched it, if any."""
    import subprocess

    if not date:
        return None
    git = ["git", "-C", str(path.parent)]  # run where the file is: the path may be relative or absolute
    log = subprocess.run(
        [*git, "log", "-1", "--format=%H", f"--before={date}", "--", path.name], capture_output=True, text=True
    )
    rev = log.stdout.strip()
    if log.returncode != 0 or not rev:
        return None
    shown = subprocess.run([*git, "show", f"{rev}:./{path.name}"], capture_output=True)
    return shown.stdout.decode("utf8") if shown.returncode == 0 else None
