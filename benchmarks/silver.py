"""A silver NER dataset: plain text tagged by a spaCy pipeline (en_core_web_md), written as IOB2.

The second benchmark of issue 5 has the paper's shape, few labeled and much unlabeled news-style text:
the State of the Union addresses, cut into sentences by spaCy's rule-based sentencizer, a uniform sample
of them (deterministic in the seed) tagged by en_core_web_md's NER. The tags are a model's predictions,
not gold: every score on this dataset measures agreement with en_core_web_md and is called *silver*.

The IOB2 file plugs into the accuracy grid like WNUT-16 (``benchmark accuracy FILE --dataset sotu_silver``);
a ``.meta.json`` beside it records the source, the tagger and the label counts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Sequence, Tuple

from .common import now_iso, write_json, write_text

SILVER_SCHEMA = "spacy-compact-ner/silver-dataset/v1"
Sentence = Tuple[List[str], List[str]]
Log = Callable[[str], None]


def tag_sentences(nlp, sentences: Iterable[str], *, batch_size: int = 256) -> Iterator[Sentence]:
    """(words, IOB2 tags) of each sentence by ``nlp``'s entities; whitespace tokens are dropped."""
    for doc in nlp.pipe(sentences, batch_size=batch_size):
        words, tags = [], []
        for token in doc:
            if token.is_space:
                continue
            tag = "O" if not token.ent_type_ else f"{token.ent_iob_}-{token.ent_type_}"
            if tag.startswith("I-") and (not tags or tags[-1] == "O" or tags[-1][2:] != token.ent_type_):
                tag = f"B-{token.ent_type_}"  # the entity's first token was a dropped space
            words.append(token.text)
            tags.append(tag)
        if words:
            yield words, tags


def iob2_text(sentences: Iterable[Sentence]) -> str:
    return "".join("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) + "\n" for words, tags in sentences)


def build_silver(
    texts: Path,
    model: Path | str,
    output: Path,
    *,
    n_sentences: int,
    seed: int = 0,
    min_tokens: int = 3,
    max_tokens: int = 80,
    batch_size: int = 256,
    log: Log = print,
) -> dict:
    """Sample ``n_sentences`` sentences of ``texts`` (uniform, in text order), tag them with ``model``,
    write ``output`` (IOB2) and ``output.meta.json``; return the meta.

    Sentences of fewer than ``min_tokens`` or more than ``max_tokens`` tokens (blank English tokenizer)
    are skipped before sampling. Raises ValueError if fewer sentences are left than asked for.
    """
    import spacy

    from spacy_compact_ner.tools.corpus import reservoir_sample, text_source_units

    if n_sentences <= 0:
        raise ValueError(f"n_sentences must be positive, got {n_sentences}")
    if not 0 < min_tokens <= max_tokens:
        raise ValueError(f"need 0 < min_tokens <= max_tokens, got {min_tokens}, {max_tokens}")
    nlp = spacy.load(model)
    if "ner" not in nlp.pipe_names:
        raise ValueError(f"{model}: the pipeline has no 'ner' component to tag with")
    keep = [name for name in nlp.pipe_names if name in ("tok2vec", "ner")]
    blank = spacy.blank("en")
    seen = Counter()

    def usable(sentences: Iterable[str]) -> Iterator[str]:
        for text in sentences:
            seen["sentences"] += 1
            if min_tokens <= len(blank.tokenizer(text)) <= max_tokens:
                seen["usable"] += 1
                yield text

    log(f"silver: reading sentences of {texts}")
    sample = reservoir_sample(usable(text_source_units(texts, blank, unit="sentence")), n_sentences, seed)
    if len(sample) < n_sentences:
        raise ValueError(
            f"{texts}: only {len(sample)} sentences of {min_tokens}-{max_tokens} tokens "
            f"({seen['sentences']} in all), {n_sentences} asked for"
        )
    log(f"silver: tagging {len(sample):,} of {seen['usable']:,} usable sentences with {model} ({', '.join(keep)})")
    with nlp.select_pipes(enable=keep):
        tagged = list(tag_sentences(nlp, sample, batch_size=batch_size))
    labels = Counter(tag[2:] for _, tags in tagged for tag in tags if tag.startswith("B-"))
    tagger = f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}"
    write_text(Path(output), iob2_text(tagged))
    meta = {
        "schema": SILVER_SCHEMA,
        "silver": f"entity tags are predictions of {tagger} {nlp.meta.get('version')}, not gold annotation",
        "source": str(texts),
        "tagger": {"path": str(model), "name": tagger, "version": nlp.meta.get("version"), "components": keep},
        "seed": seed,
        "min_tokens": min_tokens,
        "max_tokens": max_tokens,
        "source_sentences": seen["sentences"],
        "usable_sentences": seen["usable"],
        "sentences": len(tagged),
        "tokens": sum(len(words) for words, _ in tagged),
        "entities": dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))),
        "date": now_iso(),
    }
    write_json(meta_path(output), meta)
    log(
        f"silver: {meta['sentences']:,} sentences, {meta['tokens']:,} tokens, {sum(labels.values()):,} entities "
        f"-> {output}"
    )
    return meta


def meta_path(output: Path) -> Path:
    return Path(output).with_name(Path(output).name + ".meta.json")


def label_summary(meta: dict, top: int = 6) -> str:
    """``"GPE 4,120, ORG 3,010, ..."``: the most frequent silver labels."""
    items: Sequence[Tuple[str, int]] = list(meta["entities"].items())[:top]
    return ", ".join(f"{label} {count:,}" for label, count in items)
