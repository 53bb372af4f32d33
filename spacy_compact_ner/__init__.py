"""spacy-compact-ner: compact, fast spaCy NER students distilled from a transformer teacher."""
from .decoding import biluo_tags, viterbi, viterbi_batch
from .distill.losses import DistillationLoss, make_distillation_loss
from .distill.reader import create_distill_corpus_reader
from .models import build_idcnn_encoder, build_token_classifier, build_transformer_with_features
from .pipeline import CompactNER, make_compact_ner

__version__ = "0.1.0"

__all__ = [
    "CompactNER",
    "DistillationLoss",
    "biluo_tags",
    "build_idcnn_encoder",
    "build_token_classifier",
    "build_transformer_with_features",
    "create_distill_corpus_reader",
    "make_compact_ner",
    "make_distillation_loss",
    "viterbi",
    "viterbi_batch",
]
