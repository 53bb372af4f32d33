"""Registered model architectures: the ID-CNN student encoder, the shared token classifier head
and the teacher body (a transformer listener, optionally with case/shape features and static vectors).
Their chains keep no activations at inference (``lean.release_activations``)."""
from .classifier import build_token_classifier
from .idcnn import build_idcnn_encoder, dilated_window
from .teacher import build_transformer_with_features

__all__ = [
    "build_idcnn_encoder",
    "build_token_classifier",
    "build_transformer_with_features",
    "dilated_window",
]
