"""The ``compact_ner`` component: a token classifier over BILUO tags that writes ``doc.ents``.

The same component is the teacher's head (on a transformer listener) and the student's (on the
ID-CNN). Its loss is a registered function, so distillation is ordinary ``spacy train``.
"""

import unicodedata
from functools import lru_cache
from itertools import accumulate, islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy
from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE, IS_ALPHA, IS_DIGIT, IS_PUNCT, ORTH
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate
from thinc.util import to_numpy

from .decoding import biluo_tags, labels_from_tags, log_softmax, ragged_spans, viterbi_ragged
from .losses import DistillationLoss, make_distillation_loss
from .store import get_teacher_logits

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-compact-ner.TokenClassifier.v1"
nO = null

[model.tok2vec]
@architectures = "spacy-compact-ner.IDCNN.v1"
width = 96
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false
dilations = [1, 2, 1]
n_iter = 3
maxout_pieces = 2
cpu_gemm = "numpy"
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]

# Examples the model is initialized on (shapes, hash tables), as spaCy's own components: the labels
# are read from every example, since the output layer cannot grow after initialize.
INIT_SAMPLE_SIZE = 10

DEFAULT_LOSS = {
    "@losses": "spacy-compact-ner.DistillationLoss.v1",
    "gold_weight": 1.0,
    "kd_weight": 1.0,
    "pseudo_label_weight": 1.0,
    "temperature": 1.0,
    "kd_kind": "kl",
}


@Language.factory(
    "compact_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "loss": DEFAULT_LOSS,
        "spans_key": "compact_ner",
        "overwrite_ents": True,
        "learn_rate_scale": 1.0,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_compact_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[numpy.ndarray]],
    loss: DistillationLoss,
    spans_key: Optional[str],
    overwrite_ents: bool,
    learn_rate_scale: float,
    scorer: Optional[Callable],
) -> "CompactNER":
    """Create a ``compact_ner`` component.

    model (Model[List[Doc], List[Floats2d]]): Scores every BILUO tag of every token.
    loss (DistillationLoss): Combines gold, distillation and pseudo-label signals.
    spans_key (Optional[str]): Where predicted entities with confidences are also written
        (``doc.spans[spans_key]``, scores in ``.attrs["scores"]``); None to skip.
    overwrite_ents (bool): Replace entities already on the doc (True), or keep them and add only
        predictions that do not overlap them (False).
    learn_rate_scale (float): Multiplies the optimizer's learning rate for this component's own
        weights (the head, and the encoder unless it is a separate component such as a
        transformer). A fresh head on a slowly fine-tuned transformer learns faster with e.g. 20.
    scorer (Optional[Callable]): Scores the component; spaCy's NER scorer by default.
    """
    return CompactNER(
        nlp.vocab,
        model,
        name,
        loss=loss,
        spans_key=spans_key,
        overwrite_ents=overwrite_ents,
        learn_rate_scale=learn_rate_scale,
        scorer=scorer,
    )


class CompactNER(TrainablePipe):
    """Named entity recognizer as a BILUO token classifier with constrained Viterbi decoding."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "compact_ner",
        *,
        loss: Optional[DistillationLoss] = None,
        spans_key: Optional[str] = "compact_ner",
        overwrite_ents: bool = True,
        learn_rate_scale: float = 1.0,
        scorer: Optional[Callable] = get_ner_prf,
    ) -> None:
        if not learn_rate_scale > 0:
            raise ValueError(f"learn_rate_scale must be > 0, got {learn_rate_scale}")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.loss = loss if loss is not None else make_distillation_loss()
        self.scorer = scorer
        self.learn_rate_scale = learn_rate_scale
        self.cfg: Dict = {"labels": [], "spans_key": spans_key, "overwrite_ents": overwrite_ents}
        self._static_vectors = [node for node in model.walk() if node.name == "static_vectors"]

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels, in the order their tags are scored."""
        return tuple(self.cfg["labels"])

    @property
    def tags(self) -> List[str]:
        """The BILUO tags the model scores: ``O`` then ``B``, ``I``, ``L``, ``U`` of each label."""
        return biluo_tags(self.labels)

    @property
    def label_data(self) -> Tuple[str, ...]:
        """What ``spacy init labels`` saves and ``initialize(labels=...)`` reads."""
        return self.labels

    @property
    def loss_keys(self) -> List[str]:
        """The keys ``update`` adds to ``losses`` besides the component's name: the weighted loss of each
        term (``{name}_gold``, ``{name}_kd``, ``{name}_pseudo_label``) whose weight is above 0, when
        there are two or more such terms (a single term is the total). They sum to the total."""
        terms = getattr(self.loss, "active_terms", ())
        return [f"{self.name}_{term}" for term in terms] if len(terms) > 1 else []

    def _is_initialized(self) -> bool:
        output = self.model.get_ref("output_layer")
        return output.has_dim("nO") is True

    def add_label(self, label: str) -> int:
        """Add an entity label before ``initialize``; returns 1 if it was new, else 0."""
        if not isinstance(label, str) or not label or "-" in label[:1]:
            raise ValueError(f"Entity labels must be non-empty strings, got {label!r}")
        if label in self.cfg["labels"]:
            return 0
        if self._is_initialized():
            raise ValueError(
                f"Cannot add label {label!r} to '{self.name}' after it was initialized: its output "
                f"layer is sized for {len(self.labels)} labels. Add labels before initialize()."
            )
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Set the labels and initialize the model.

        Labels come from ``labels`` (e.g. ``spacy init labels`` output) or else from all the examples,
        read once as a stream: the gold entities and the tags of stored teacher distributions (the
        output layer is sized here and cannot grow later, so a label seen only late in the data must
        still be found). The model is initialized on the first ``INIT_SAMPLE_SIZE`` examples, as
        spaCy's own components do. If the examples carry teacher distributions, their labels must equal
        the component's: all of them are checked when the labels are read from the data, the sample
        when ``labels`` are given (``update`` checks every later doc).
        """
        # [initialize] vectors are loaded before the components: fail before reading any data.
        check_static_vectors(self.name, self._static_vectors, self.vocab)
        validate_get_examples(get_examples, "CompactNER.initialize")
        if labels is not None:
            for label in labels:
                self.add_label(label)
            teacher_labels = _teacher_labels(islice(get_examples(), INIT_SAMPLE_SIZE))
        else:
            gold_labels, teacher_labels = _labels_in(get_examples())
            for label in teacher_labels or sorted(gold_labels):
                self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"'{self.name}' has no entity labels: the training examples carry no entities and no "
                "teacher distributions, and no labels were given (use add_label, or [initialize.components."
                f"{self.name}.labels] with the output of `spacy init labels`)."
            )
        if teacher_labels and set(teacher_labels) != set(self.labels):
            raise ValueError(
                f"'{self.name}' labels {sorted(self.labels)} differ from the teacher's labels "
                f"{sorted(teacher_labels)} stored in the training data: copy the labels from the teacher."
            )
        self.model.get_ref("output_layer").set_dim("nO", len(self.tags))
        doc_sample = [eg.predicted for eg in islice(get_examples(), INIT_SAMPLE_SIZE)]
        self.model.initialize(X=doc_sample or None)

    def predict(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """Tag scores for each doc, ``(n_tokens, n_tags)``."""
        docs = list(docs)
        if not self._is_initialized():
            raise ValueError(Errors.E109.format(name=self.name))
        n_tags = len(self.tags)
        scores = [numpy.zeros((0, n_tags), dtype="float32") for _ in docs]
        # Only non-empty docs go through the model: a transformer listener gives an empty doc a
        # (0, 0) array, which cannot be concatenated with the other docs' (0, width) features.
        non_empty = [i for i, doc in enumerate(docs) if len(doc)]
        if non_empty:
            check_static_vectors(self.name, self._static_vectors, docs[non_empty[0]].vocab)
            predicted = self.model.predict([docs[i] for i in non_empty])
            for i, doc_scores in zip(non_empty, predicted):
                scores[i] = self.model.ops.to_numpy(doc_scores)
        return scores

    def set_annotations(self, docs: Iterable[Doc], scores: List[numpy.ndarray]) -> None:
        """Decode the best valid BILUO sequence of each doc and write its entities (an entity never
        begins or ends on a token of only whitespace, control or format characters). Decoding runs on
        the CPU (GPU scores are copied to numpy), on the whole batch at once: one log-softmax, one
        padded Viterbi, the spans, their confidences and every token's entity attributes as arrays.
        Per doc: one ``to_array`` (lexeme flags for the blank check), the spans of its span group, and
        one ``from_array`` that writes what ``doc.set_ents(spans, default="outside")`` would."""
        docs = list(docs)
        if len(scores) != len(docs):
            raise ValueError(f"Got {len(scores)} score arrays for {len(docs)} docs")
        if not docs:
            return
        n_tags = len(self.tags)
        lengths = [len(doc) for doc in docs]
        offsets = [0, *accumulate(lengths)]
        log_probs = log_softmax(numpy.concatenate([to_numpy(s).reshape(-1, n_tags) for s in scores], dtype="float32"))
        token_attrs = numpy.concatenate([doc.to_array(_TOKEN_ATTRS) for doc in docs])
        _forbid_blank_boundaries(log_probs, token_attrs, docs[0].vocab.strings)
        paths = viterbi_ragged(log_probs, lengths)
        span_docs, starts, ends, label_ids = ragged_spans(paths, lengths)
        first_span = numpy.searchsorted(span_docs, numpy.arange(len(docs) + 1)).tolist()
        doc_starts = numpy.asarray(offsets[:-1], dtype="int64")[span_docs]
        label_hashes = [self.vocab.strings.add(label) for label in self.labels]
        span_labels = [label_hashes[k] for k in label_ids.tolist()]
        span_args = list(zip((starts - doc_starts).tolist(), (ends - doc_starts).tolist(), span_labels))
        spans_key = self.cfg.get("spans_key")
        confidences: List[float] = []
        if spans_key:
            token_probs = numpy.exp(log_probs[numpy.arange(len(paths)), paths])
            confidences = _span_means(token_probs, starts, ends)
        ent_values = _entity_values(paths, label_hashes, token_attrs[:, _KB_COLUMN])
        keep_ents = not self.cfg.get("overwrite_ents", True)
        for i, doc in enumerate(docs):
            first, last = first_span[i], first_span[i + 1]
            spans = [Span(doc, *args) for args in span_args[first:last]] if first < last else []
            if spans_key:
                doc.spans[spans_key] = SpanGroup(
                    doc, name=spans_key, spans=spans, attrs={"scores": confidences[first:last]}
                )
            if keep_ents and doc.ents:
                kept = list(doc.ents)
                doc.set_ents(kept + [s for s in spans if not any(_overlaps(s, k) for k in kept)], default="outside")
            elif lengths[i]:
                doc.from_array(_ENT_ATTRS, ent_values[offsets[i] : offsets[i + 1]])

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd=None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples: gold entities and/or stored teacher distributions.

        Adds the loss to ``losses[name]`` and, with two or more loss terms, each term's weighted part
        to ``losses[key]`` for each key of ``loss_keys`` (shown by ``spacy-compact-ner.ConsoleLogger.v1``).
        """
        if losses is None:
            losses = {}
        for key in [self.name, *self.loss_keys]:
            losses.setdefault(key, 0.0)
        examples = list(examples)
        validate_examples(examples, "CompactNER.update")
        non_empty = [eg.predicted for eg in examples if len(eg.predicted)]
        if not non_empty:
            return losses
        check_static_vectors(self.name, self._static_vectors, non_empty[0].vocab)
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores, terms = self._loss_and_terms(examples, scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        for key in self.loss_keys:
            term = key[len(self.name) + 1 :]
            losses[key] += self.loss.weights[term] * terms[term]
        return losses

    def finish_update(self, sgd) -> None:
        """Apply the gradients, with this component's learning-rate scale."""
        if self.learn_rate_scale == 1.0:
            self.model.finish_update(sgd)
            return
        for node in self.model.walk():
            for shim in node.shims:
                shim.finish_update(sgd)
        for node in self.model.walk():
            for name in node.param_names:
                if node.has_grad(name):
                    param, _ = sgd(
                        (node.id, name), node.get_param(name), node.get_grad(name), lr_scale=self.learn_rate_scale
                    )
                    node.set_param(name, param)

    def get_loss(self, examples: Iterable[Example], scores: List) -> Tuple[float, List]:
        """The loss of a batch and the gradient for each doc's scores (on the model's device)."""
        loss, d_scores, _ = self._loss_and_terms(examples, scores)
        return loss, d_scores

    def _loss_and_terms(self, examples: Iterable[Example], scores: List) -> Tuple[float, List, Dict[str, float]]:
        """``get_loss``, and each loss term's unweighted value. Targets are built on the CPU from the
        docs, then moved to the model's device; the loss runs there (``ops.xp``)."""
        examples = list(examples)
        validate_examples(examples, "CompactNER.get_loss")
        ops = self.model.ops
        lengths = [len(eg.predicted) for eg in examples]
        if len(scores):
            logits = ops.xp.concatenate([ops.asarray2f(s) for s in scores])
        else:
            logits = ops.alloc2f(0, len(self.tags))
        gold = numpy.concatenate([self._gold_tags(eg) for eg in examples] or [numpy.zeros((0,), "int32")])
        teacher, has_teacher = self._teacher_targets(examples, lengths)
        loss, d_logits, terms = self.loss(
            logits,
            ops.asarray1i(gold),
            None if teacher is None else ops.asarray2f(teacher),
            None if has_teacher is None else ops.asarray(has_teacher, dtype="bool"),
            xp=ops.xp,
        )
        offsets = [0, *accumulate(lengths)]
        d_scores = [d_logits[offsets[i] : offsets[i + 1]] for i in range(len(examples))]
        return loss, d_scores, terms

    def _gold_tags(self, example: Example) -> numpy.ndarray:
        tag_index = {tag: i for i, tag in enumerate(self.tags)}
        gold = numpy.full((len(example.predicted),), -1, dtype="int32")
        for i, tag in enumerate(example.get_aligned_ner()):
            if tag is None or tag == "-":
                continue
            if tag not in tag_index:
                raise ValueError(
                    f"Gold tag {tag!r} in doc {example.reference.text[:60]!r} is not one of '{self.name}' labels "
                    f"{list(self.labels)}: add the label before initialize, or remove it from the data."
                )
            gold[i] = tag_index[tag]
        return gold

    def _teacher_targets(
        self, examples: List[Example], lengths: List[int]
    ) -> Tuple[Optional[numpy.ndarray], Optional[numpy.ndarray]]:
        """Teacher logits aligned to the predicted tokens (rows without a 1:1 token are masked)."""
        n_total = sum(lengths)
        teacher = None
        has_teacher = numpy.zeros((n_total,), dtype=bool)
        offset = 0
        for eg, n in zip(examples, lengths):
            stored = get_teacher_logits(eg.reference)
            if stored is not None:
                if teacher is None:
                    teacher = numpy.zeros((n_total, len(self.tags)), dtype="float32")
                ref_logits = self._reorder_teacher(stored[0], stored[1], eg)
                pred_rows, ref_rows = _one_to_one(eg)
                teacher[offset + pred_rows] = ref_logits[ref_rows]
                has_teacher[offset + pred_rows] = True
            offset += n
        return teacher, (has_teacher if teacher is not None else None)

    def _reorder_teacher(self, logits: numpy.ndarray, tags: List[str], example: Example) -> numpy.ndarray:
        if tags == self.tags:
            return logits
        if set(labels_from_tags(tags)) != set(self.labels):
            raise ValueError(
                f"Teacher distributions of doc {example.reference.text[:60]!r} are over labels "
                f"{sorted(labels_from_tags(tags))}, but '{self.name}' has labels {sorted(self.labels)}: "
                "annotate with a teacher that has the student's labels."
            )
        column = {tag: i for i, tag in enumerate(tags)}
        return logits[:, [column[tag] for tag in self.tags]]


def _one_to_one(example: Example) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Indices of predicted tokens aligned to exactly one reference token, and those tokens."""
    n_pred, n_ref = len(example.predicted), len(example.reference)
    if n_pred == n_ref and all(p.text == r.text for p, r in zip(example.predicted, example.reference)):
        rows = numpy.arange(n_pred)
        return rows, rows
    x2y = example.alignment.x2y
    y2x = example.alignment.y2x
    x_lengths = numpy.asarray(x2y.lengths)
    y_lengths = numpy.asarray(y2x.lengths)
    x_starts = numpy.cumsum(x_lengths) - x_lengths
    pred_rows = []
    ref_rows = []
    data = numpy.asarray(x2y.data)
    for i in range(n_pred):
        if x_lengths[i] == 1:
            j = int(data[x_starts[i]])
            if y_lengths[j] == 1:
                pred_rows.append(i)
                ref_rows.append(j)
    return numpy.asarray(pred_rows, dtype="int64"), numpy.asarray(ref_rows, dtype="int64")


# What set_annotations reads of every token, with one ``to_array`` per doc: the lexeme flags and ORTH
# of the blank check, and the knowledge-base ID that an entity token's is reset to 0 (as set_ents does).
_TOKEN_ATTRS = [IS_ALPHA, IS_DIGIT, IS_PUNCT, ORTH, ENT_KB_ID]
_KB_COLUMN = 4
_ENT_ATTRS = [ENT_IOB, ENT_TYPE, ENT_KB_ID]


def _forbid_blank_boundaries(log_probs: numpy.ndarray, token_attrs: numpy.ndarray, strings) -> numpy.ndarray:
    """Tokens that render as nothing (whitespace, control and format characters such as NUL or a
    zero-width space) may not begin, end or be an entity, as whitespace in spaCy's own NER: their
    B-, L- and U- scores are set to -inf, so a text of such characters gets no entities.
    ``log_probs`` holds the docs' token rows, concatenated, ``token_attrs`` their ``_TOKEN_ATTRS``;
    ``log_probs`` is changed in place and returned."""
    if not len(log_probs):
        return log_probs
    # Lexeme flags rule out most tokens at once; only the rest are checked character by character.
    candidates = numpy.flatnonzero(~token_attrs[:, :3].any(axis=1))
    rows = [i for i, orth in zip(candidates.tolist(), token_attrs[candidates, 3].tolist()) if _is_blank(strings[orth])]
    if rows:
        n_labels = (log_probs.shape[1] - 1) // 4
        boundary = (1 + 4 * numpy.arange(n_labels)[:, None] + numpy.array([0, 2, 3])[None, :]).reshape(-1)
        log_probs[numpy.ix_(rows, boundary)] = -numpy.inf
    return log_probs


def _entity_values(paths: numpy.ndarray, label_hashes: List[int], kb_ids: numpy.ndarray) -> numpy.ndarray:
    """The ``_ENT_ATTRS`` of every token of a decoded batch, as ``doc.set_ents(spans, default="outside")``
    sets them: ``ENT_IOB`` 3 (B-, U-), 1 (I-, L-) or 2 (O), the label's hash as ``ENT_TYPE`` (0 outside),
    ``ENT_KB_ID`` 0 on entity tokens and as it was (``kb_ids``) on the others."""
    n_labels = len(label_hashes)
    per_tag = numpy.zeros((1 + 4 * n_labels, 3), dtype="uint64")
    per_tag[0, 0] = 2
    per_tag[1:, 0] = numpy.tile(numpy.array([3, 1, 1, 3], dtype="uint64"), n_labels)
    per_tag[1:, 1] = numpy.repeat(numpy.asarray(label_hashes, dtype="uint64"), 4)
    values = per_tag[paths]
    outside = paths == 0
    values[outside, 2] = kb_ids[outside]
    return values


def _span_means(token_probs: numpy.ndarray, starts: numpy.ndarray, ends: numpy.ndarray) -> List[float]:
    """The mean of ``token_probs[start:end]`` for every (non-empty, ordered, non-overlapping) span."""
    if not len(starts):
        return []
    bounds = numpy.stack([starts, ends], axis=1).reshape(-1)
    sums = numpy.add.reduceat(numpy.append(token_probs, numpy.float32(0.0)), bounds)[::2]
    return (sums / (ends - starts).astype(token_probs.dtype)).tolist()


_BLANK_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}


@lru_cache(maxsize=65536)
def _is_blank(text: str) -> bool:
    return all(c.isspace() or unicodedata.category(c) in _BLANK_CATEGORIES for c in text)


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _teacher_labels(examples: Iterable[Example]) -> List[str]:
    """The label set of the teacher distributions stored in the examples ([] if none); all docs must agree."""
    return _labels_in(examples, gold=False)[1]


def _labels_in(examples: Iterable[Example], *, gold: bool = True) -> Tuple[Set[str], List[str]]:
    """The gold entity labels and the teacher's labels (in the teacher's order, [] if no doc carries
    distributions) of a stream of examples, read once; all teacher distributions must agree."""
    gold_labels: Set[str] = set()
    found: Optional[List[str]] = None
    for eg in examples:
        if gold:
            gold_labels.update(ent.label_ for ent in eg.reference.ents)
        stored = get_teacher_logits(eg.reference)
        if stored is None:
            continue
        labels = labels_from_tags(stored[1])
        if found is None:
            found = labels
        elif set(labels) != set(found):  # the order may differ: rows are reordered per doc
            raise ValueError(
                f"Teacher distributions disagree on labels: {found} vs {labels} (doc {eg.reference.text[:60]!r})"
            )
    return gold_labels, found or []


def check_static_vectors(name: str, static_vectors: Sequence[Model], vocab: Vocab) -> None:
    """Raise a ValueError naming component ``name`` if its ``static_vectors`` layers cannot run on
    ``vocab``: the vocab has no vectors table, or one of another width than the layer was trained on
    (otherwise thinc fails deep inside with an IndexError or E896)."""
    if not static_vectors:
        return
    table = vocab.vectors
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(
            f"'{name}' embeds static vectors (include_static_vectors = true) but the vocab has no vectors "
            "table. Load the table it needs: in training, set [initialize] vectors, e.g. --paths.vectors "
            "training/vectors/glove-20000 (built by `python -m spacy_compact_ner vectors`); for a component "
            "sourced from a trained pipeline, set it to that pipeline's path (its vocab holds the table) or "
            "share that pipeline's vocab (spacy.blank(lang, vocab=source.vocab)). Or set "
            "include_static_vectors = false and retrain."
        )
    for layer in static_vectors:
        if layer.has_dim("nM") is True and layer.get_dim("nM") != table.shape[1]:
            raise ValueError(
                f"'{name}' embeds static vectors of {layer.get_dim('nM')} dims (include_static_vectors = "
                f"true) but the vocab's vectors table has {table.shape[1]}: load the table the component "
                "was trained with ([initialize] vectors / paths.vectors, or the source pipeline's vocab)."
            )
