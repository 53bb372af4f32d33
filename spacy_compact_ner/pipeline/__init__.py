"""The ``compact_ner`` pipeline component."""
from .compact_ner import CompactNER, make_compact_ner

__all__ = ["CompactNER", "make_compact_ner"]
