"""One model-selection rule for every system of a cell: ``spacy train`` scores the cell's dev set at
least once per epoch and at least every ``MAX_EVAL_INTERVAL`` optimizer steps, whichever is more often,
and keeps the checkpoint with the best dev score (``model-best``).

spaCy evaluates every ``training.eval_frequency`` steps, not per epoch, so the interval is the number
of steps of the shortest epoch the training can have: the config's own batcher replayed over the
training docs' lengths for as many steps as the training may run (with a growing batch size the last
epochs are the shortest). A result records the interval it was trained with (``selection_rule``); the
report checks targets only on results selected by the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

MAX_EVAL_INTERVAL = 100
# How far the batcher is replayed when the training has neither max_steps nor max_epochs.
REPLAY_STEPS = 20_000


@dataclass(frozen=True)
class Selection:
    """How often a training evaluates on dev: every ``eval_frequency`` steps, which is at most the
    ``shortest_epoch`` (in steps) and at most ``MAX_EVAL_INTERVAL``."""

    eval_frequency: int
    shortest_epoch: int
    first_epoch: int

    def to_dict(self) -> Dict[str, int]:
        return {
            "eval_frequency": self.eval_frequency,
            "shortest_epoch_steps": self.shortest_epoch,
            "first_epoch_steps": self.first_epoch,
            "max_eval_interval": MAX_EVAL_INTERVAL,
        }


def doc_lengths(paths: Sequence[Path]) -> List[int]:
    """The token count of every doc of these .spacy files (what spaCy's batchers measure)."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    vocab = Vocab()
    return [len(doc) for path in paths for doc in DocBin().from_disk(path).get_docs(vocab)]


class _Sized:
    """Stands in for an Example in the batcher: only its length is read."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def epoch_steps(config: Path, overrides: Dict[str, object], lengths: List[int]) -> List[int]:
    """The optimizer steps of each epoch that the config's ``[training.batcher]`` makes of docs of
    these lengths, replayed for the config's max_steps / max_epochs (or ``REPLAY_STEPS``)."""
    from spacy.util import load_config, registry

    config_overrides = {key: _config_value(value) for key, value in overrides.items()}
    loaded = load_config(config, overrides=config_overrides, interpolate=True)
    training = loaded["training"]
    batcher = registry.resolve({"batcher": training["batcher"]})["batcher"]
    max_steps = int(training.get("max_steps") or 0)
    max_epochs = int(training.get("max_epochs") or 0)
    items = [_Sized(n) for n in lengths if n > 0]
    if not items:
        raise ValueError("no training docs with tokens: cannot size the evaluation interval")
    budget = max_steps if max_steps > 0 else REPLAY_STEPS
    steps: List[int] = []
    while sum(steps) < budget and (max_epochs <= 0 or len(steps) < max_epochs):
        n_batches = sum(1 for _ in batcher(items))
        steps.append(max(1, n_batches))  # spaCy counts a step per batch
    return steps


def _config_value(value: object) -> object:
    """An override as thinc's Config expects it (the harness passes them as CLI strings)."""
    if isinstance(value, str):
        import srsly

        try:
            return srsly.json_loads(value)
        except ValueError:
            return value
    return value


def selection_for(config: Path, overrides: Dict[str, object], docs: Sequence[Path]) -> Selection:
    """The evaluation interval that the rule gives a training of ``config`` on these docs (the
    .spacy files of its training corpus, or of the docs it was annotated from)."""
    steps = epoch_steps(config, overrides, doc_lengths(docs))
    shortest = min(steps)
    return Selection(min(MAX_EVAL_INTERVAL, shortest), shortest, steps[0])


def off_rule(cell: dict) -> Optional[str]:
    """None when a result's model was selected by the rule, else why not (a result written before the
    rule, without ``selection_rule``, is off it until `backfill_selection` adds one)."""
    rule = cell.get("selection_rule")
    if not rule:
        return "selection not recorded"
    limit = min(int(rule.get("max_eval_interval", MAX_EVAL_INTERVAL)), int(rule["shortest_epoch_steps"]))
    if int(rule["eval_frequency"]) > limit:
        return f"evaluated every {rule['eval_frequency']} steps, its shortest epoch {rule['shortest_epoch_steps']}"
    return None


def _recorded_eval_frequency(config: Path, overrides: Dict[str, object]) -> int:
    from spacy.util import load_config

    if "training.eval_frequency" in overrides:
        return int(str(overrides["training.eval_frequency"]))
    return int(load_config(config, interpolate=False)["training"]["eval_frequency"])


def config_version(path: Path, sha256: Optional[str]) -> Optional[str]:
    """The text of ``path`` as it was when its sha256 was ``sha256``: the file itself, or the version of
    it in the git history that has that digest (None: no such version)."""
    import hashlib
    import subprocess

    from spacy_compact_ner.tools.assets import sha256_file

    if not sha256:
        return None
    if path.is_file() and sha256_file(path) == sha256:
        return path.read_text(encoding="utf8")
    try:
        revs = subprocess.run(
            ["git", "log", "--format=%H", "--", str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    for rev in revs:
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True)
        if shown.returncode == 0 and hashlib.sha256(shown.stdout).hexdigest() == sha256:
            return shown.stdout.decode("utf8")
    return None


def backfill_selection(metrics_dir: Path, *, datasets: Sequence[str] = (), log: Callable[[str], None] = print) -> tuple:
    """Add ``selection_rule`` to result files written without one: the interval they were evaluated at
    (their recorded config and overrides) and the shortest epoch of their training docs (the cell's
    corpus under its model's folder). Skips a result whose config file changed since (sha256) or whose
    corpus is gone. RETURNS (added, skipped)."""
    import tempfile

    from .common import result_files, write_json

    added = skipped = 0
    for path, cell in result_files(metrics_dir, datasets):
        if "selection_rule" in cell or "config" not in cell:
            continue
        config = Path(cell["config"]["file"])
        corpus = Path(cell["model"]).parent.parent / "corpus"
        docs = [corpus / "train.spacy"] + ([corpus / "unlabeled.spacy"] if cell.get("train_data") == "distill" else [])
        text = config_version(config, cell["config"].get("sha256"))
        if text is None:
            log(f"[selection] {path}: no version of {config} with the recorded sha256, skipped")
            skipped += 1
            continue
        if not all(p.is_file() for p in docs):
            log(f"[selection] {path}: corpus {corpus} missing, skipped")
            skipped += 1
            continue
        overrides = dict(cell["config"].get("overrides") or {})
        with tempfile.TemporaryDirectory() as tmp:
            used = Path(tmp) / config.name
            used.write_text(text, encoding="utf8")
            rule = selection_for(used, overrides, docs)
            every = _recorded_eval_frequency(used, overrides)
        cell["selection_rule"] = {**rule.to_dict(), "eval_frequency": every}
        write_json(path, cell)
        reason = off_rule(cell)
        log(f"[selection] {path}: {reason or 'on the rule'}")
        added += 1
    return added, skipped
