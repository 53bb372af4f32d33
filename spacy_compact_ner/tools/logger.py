"""``spacy-compact-ner.ConsoleLogger.v1``: spaCy's console logger, with one more loss column per loss
term of each ``compact_ner`` component (gold, kd, pseudo_label).

spaCy's ``spacy.ConsoleLogger.v3`` prints one loss column per trainable pipe, read from
``info["losses"][pipe_name]``. The component records each term under its own key (``ner_gold``,
``ner_kd``, ``ner_pseudo_label``: ``CompactNER.loss_keys``), so this logger hands spaCy's a view of
the pipeline in which every such key follows its component as one more loss column. The table, the
progress bar and the JSONL ``output_file`` (whose ``losses`` then hold the terms too) are spaCy's own.
"""

import sys
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.util import registry

LogStep = Callable[[Optional[Dict[str, Any]]], None]

_PROGRESS_BARS = ("eval", "train")


@registry.loggers("spacy-compact-ner.ConsoleLogger.v1")
def console_logger(
    progress_bar: Union[bool, str, None] = False,
    console_output: bool = True,
    output_file: Optional[Union[str, Path]] = None,
) -> Callable[[Language, IO, IO], Tuple[LogStep, Callable[[], None]]]:
    """spaCy's ``spacy.ConsoleLogger.v3`` plus a loss column per loss term of each component that
    records them (``compact_ner`` with two or more loss weights above 0).

    progress_bar (Union[bool, str, None]): "eval" (steps to the next evaluation), "train" (steps to
        ``training.max_steps``), or true / false as in ``spacy.ConsoleLogger.v1`` (true: "eval").
    console_output (bool): Whether to print the table.
    output_file (Optional[Union[str, Path]]): A JSONL file to write each evaluation's losses and scores to.
    """
    make_spacy_logger = registry.loggers.get("spacy.ConsoleLogger.v3")
    spacy_logger = make_spacy_logger(
        progress_bar=_progress_bar(progress_bar), console_output=console_output, output_file=output_file
    )

    def setup_printer(
        nlp: Language, stdout: IO = sys.stdout, stderr: IO = sys.stderr
    ) -> Tuple[LogStep, Callable[[], None]]:
        term_keys = [key for _, key in _loss_terms(nlp)]
        log_step, finalize = spacy_logger(_WithLossColumns(nlp), stdout, stderr)

        def log_step_with_terms(info: Optional[Dict[str, Any]]) -> None:
            if info is not None and term_keys:
                # A term's key is missing until its component's first update: show 0 as spaCy would.
                info = {**info, "losses": {**dict.fromkeys(term_keys, 0.0), **info["losses"]}}
            log_step(info)

        return log_step_with_terms, finalize

    return setup_printer


def _progress_bar(value: Union[bool, str, None]) -> Optional[str]:
    if value is None or value is False:
        return None
    if value is True:
        return "eval"
    if value not in _PROGRESS_BARS:
        raise ValueError(f'progress_bar must be true, false, "eval" or "train", got {value!r}')
    return value


def _loss_terms(nlp: Language) -> Iterator[Tuple[str, str]]:
    """``(pipe name, loss key)`` of each loss term recorded by a trainable, non-frozen pipe."""
    frozen = set(nlp.config["training"].get("frozen_components") or [])
    for name, proc in nlp.pipeline:
        if name in frozen or not getattr(proc, "is_trainable", False):
            continue
        for key in getattr(proc, "loss_keys", ()):
            yield name, key


class _LossColumn:
    """Stands in the pipeline view for one loss term: spaCy's logger prints a column per trainable pipe."""

    is_trainable = True


class _WithLossColumns:
    """``nlp`` as spaCy's console logger sees it: each loss term follows its pipe in ``pipeline``."""

    def __init__(self, nlp: Language) -> None:
        self._nlp = nlp

    @property
    def pipeline(self) -> List[Tuple[str, Any]]:
        keys: Dict[str, List[str]] = {}
        for name, key in _loss_terms(self._nlp):
            keys.setdefault(name, []).append(key)
        pipeline: List[Tuple[str, Any]] = []
        for name, proc in self._nlp.pipeline:
            pipeline.append((name, proc))
            pipeline.extend((key, _LossColumn()) for key in keys.get(name, ()))
        return pipeline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nlp, name)
