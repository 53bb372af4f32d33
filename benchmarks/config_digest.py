"""What a student was trained with, as one digest: the sections of spaCy's filled config (every default
written out) that decide the model, so that a changed default in a config file trains again what ran the
old one, while a changed comment, a new setting at its old default or another cell's files do not."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Mapping, Sequence, Tuple

import srsly

from .runner import PER_CELL_OVERRIDES

# What differs per cell by design or does not change the model: where its files are, the seed, the dev
# interval (the selection rule, recorded and checked on its own), logging, the time cap's callback.
SKIPPED_OVERRIDES = ("training.before_update", "training.logger")
SKIPPED_TRAINING = ("logger", "before_update", "eval_frequency", "seed", "gpu_allocator", "dev_corpus", "train_corpus")


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
    config = Config().from_str(config_text, overrides=overrides, interpolate=False)
    filled = load_model_from_config(config, auto_fill=True, validate=False).config.interpolate()
    training = {key: value for key, value in filled["training"].items() if key not in SKIPPED_TRAINING}
    reader = {key: value for key, value in filled["corpora"]["train"].items() if key != "path"}
    payload: Tuple = (filled["components"], training, reader)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def is_student(system: str) -> bool:
    """Whether the grid records a settings digest for ``system`` (the students and student variants)."""
    from . import variant_of

    return system in ("student_full", "student_kd", "student_gold") or bool(variant_of(system))


def backfill_settings(metrics_dir: Path, *, datasets: Sequence[str] = (), log: Callable[[str], None] = print) -> tuple:
    """Add ``config.settings_sha256`` to student results written without it: the digest of the version of
    their config file they ran (its recorded sha256, from the file or its git history) with their recorded
    overrides. Skips a result with no such version. RETURNS (added, skipped)."""
    from .common import result_files, write_json
    from .selection import config_version

    added = skipped = 0
    for path, cell in result_files(metrics_dir, datasets):
        config = cell.get("config") or {}
        if not is_student(cell.get("system", "")) or "settings_sha256" in config:
            continue
        text = config_version(Path(config["file"]), config.get("sha256"))
        if text is None:
            log(f"[settings] {path}: no version of {config['file']} with the recorded sha256, skipped")
            skipped += 1
            continue
        config["settings_sha256"] = settings_digest(text, config.get("overrides") or {})
        write_json(path, cell)
        added += 1
    return added, skipped
