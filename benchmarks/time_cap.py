"""A wall-clock cap on a ``spacy train`` run, as a ``[training.before_update]`` callback.

Loaded with ``spacy train --code benchmarks/time_cap.py`` (a standalone file: no package imports).
Before the first update after ``minutes`` have passed it writes ``marker`` (JSON: step, epoch,
minutes) and raises ``TimeCapReached``: spaCy then stops, keeping ``model-best`` as saved at its last
dev improvement, and exits non-zero; the harness reads the marker to tell the cap from a crash. The
check runs between updates, never while spaCy writes a checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Dict

from spacy.language import Language
from spacy.util import registry

REGISTERED_NAME = "spacy-compact-ner.benchmark_time_cap.v1"


class TimeCapReached(RuntimeError):
    """The training ran for its time cap."""


@registry.callbacks(REGISTERED_NAME)
def create_time_cap(minutes: float, marker: str) -> Callable[[Language, Dict[str, int]], None]:
    if minutes <= 0:
        raise ValueError(f"time cap must be > 0 minutes, got {minutes}")
    start = time.monotonic()

    def before_update(nlp: Language, args: Dict[str, int]) -> None:
        elapsed = time.monotonic() - start
        if elapsed >= 60.0 * minutes:
            info = {"step": int(args.get("step", -1)), "epoch": int(args.get("epoch", -1)), "minutes": minutes}
            Path(marker).write_text(json.dumps(info), encoding="utf8")
            raise TimeCapReached(f"time cap of {minutes:g} min reached at step {info['step']}")

    return before_update
