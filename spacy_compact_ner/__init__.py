"""spacy-compact-ner: compact, fast spaCy NER students distilled from a transformer teacher.

spaCy finds the component, architectures, losses and readers through entry points; the names
below are imported on first use, so the command line starts quickly.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "CompactNER": "spacy_compact_ner.component",
    "make_compact_ner": "spacy_compact_ner.component",
    "DistillationLoss": "spacy_compact_ner.losses",
    "make_distillation_loss": "spacy_compact_ner.losses",
    "create_distill_corpus_reader": "spacy_compact_ner.reader",
    "build_idcnn_encoder": "spacy_compact_ner.idcnn",
    "build_token_classifier": "spacy_compact_ner.classifier",
    "biluo_tags": "spacy_compact_ner.decoding",
    "viterbi": "spacy_compact_ner.decoding",
    "viterbi_batch": "spacy_compact_ner.decoding",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spacy_compact_ner' has no attribute {name!r}")
