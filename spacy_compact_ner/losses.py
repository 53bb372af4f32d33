"""The student's loss: gold cross-entropy, temperature-scaled knowledge distillation and
pseudo-label cross-entropy, each applied to the tokens that carry its signal.

The loss runs on the array module of the model (``model.ops.xp``): numpy on CPU, cupy on GPU, so
training on a GPU never copies the scores to the host."""

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, Literal, Optional, Tuple

from spacy.util import registry

from .decoding import array_module, log_softmax, softmax

KDKind = Literal["kl", "mse"]


@dataclass(frozen=True)
class DistillationLoss:
    """Loss over a batch of concatenated tokens.

    For ``N`` tokens, with student logits ``z`` and, where present, teacher logits ``t``:

    - gold: ``gold_weight * sum(-log softmax(z)[gold])`` over tokens with a gold tag;
    - kd, kind "kl": ``kd_weight * T^2 * sum(KL(softmax(t/T) || softmax(z/T)))`` over tokens with
      teacher logits; kind "mse": ``kd_weight * sum(mean((z - t)^2))`` over the same tokens;
    - pseudo-label: ``pseudo_label_weight * sum(-log softmax(z)[argmax t])`` over tokens with teacher
      logits and no gold tag.

    The total is divided by ``N``, so a term's strength does not depend on batch size.
    """

    gold_weight: float = 1.0
    kd_weight: float = 1.0
    pseudo_label_weight: float = 1.0
    temperature: float = 1.0
    kd_kind: KDKind = "kl"

    def __post_init__(self) -> None:
        for name in ("gold_weight", "kd_weight", "pseudo_label_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Distillation loss {name} must be a finite number >= 0, got {value}")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"Distillation temperature must be > 0, got {self.temperature}")
        if self.kd_kind not in ("kl", "mse"):
            raise ValueError(f"Distillation kd_kind must be 'kl' or 'mse', got {self.kd_kind!r}")

    @property
    def weights(self) -> Dict[str, float]:
        """Each term's weight, by the name ``__call__`` reports it under."""
        return {"gold": self.gold_weight, "kd": self.kd_weight, "pseudo_label": self.pseudo_label_weight}

    @property
    def active_terms(self) -> Tuple[str, ...]:
        """The terms with a weight above 0 (the others are never computed)."""
        return tuple(name for name, weight in self.weights.items() if weight > 0)

    def __call__(
        self,
        logits: Any,
        gold: Any,
        teacher: Optional[Any] = None,
        has_teacher: Optional[Any] = None,
        *,
        xp: Optional[ModuleType] = None,
    ) -> Tuple[float, Any, Dict[str, float]]:
        """Loss and gradient w.r.t. ``logits``, computed on the arrays' device.

        logits (Floats2d): ``(N, n_tags)`` student scores.
        gold (Ints1d): ``(N,)`` gold tag index, -1 where the token has no gold tag.
        teacher (Optional[Floats2d]): ``(N, n_tags)`` teacher logits (rows without are ignored).
        has_teacher (Optional[Bools1d]): ``(N,)`` which rows of ``teacher`` are real.
        xp (Optional[module]): The array module (``model.ops.xp``: numpy, or cupy on GPU); by default
            the module of ``logits``. All arrays must live on its device.
        RETURNS (Tuple[float, Floats2d, Dict[str, float]]): Total loss, gradient (on ``xp``), and each
            term's unweighted loss per token (the total is their weighted sum).
        """
        xp = array_module(logits, xp)
        n_tokens = logits.shape[0]
        grad = xp.zeros(logits.shape, dtype="float32")
        terms = {"gold": 0.0, "kd": 0.0, "pseudo_label": 0.0}
        if n_tokens == 0:
            return 0.0, grad, terms
        logits = logits.astype("float32", copy=False)
        log_probs = log_softmax(logits, xp=xp)
        probs = xp.exp(log_probs)
        has_gold = gold >= 0
        if self.gold_weight and bool(has_gold.any()):
            rows = xp.flatnonzero(has_gold)
            terms["gold"], g = _cross_entropy(log_probs[rows], probs[rows], gold[rows], xp)
            grad[rows] += self.gold_weight * g
        if teacher is not None and has_teacher is not None and bool(has_teacher.any()):
            teacher = teacher.astype("float32", copy=False)
            rows = xp.flatnonzero(has_teacher)
            if self.kd_weight:
                kd_loss, g = self._kd(logits[rows], teacher[rows], xp)
                terms["kd"] = kd_loss
                grad[rows] += self.kd_weight * g
            pl_rows = xp.flatnonzero(has_teacher & ~has_gold)
            if self.pseudo_label_weight and len(pl_rows):
                targets = teacher[pl_rows].argmax(axis=1)
                terms["pseudo_label"], g = _cross_entropy(log_probs[pl_rows], probs[pl_rows], targets, xp)
                grad[pl_rows] += self.pseudo_label_weight * g
        total = sum(self.weights[name] * value for name, value in terms.items())
        terms = {name: value / n_tokens for name, value in terms.items()}
        return total / n_tokens, grad / n_tokens, terms

    def _kd(self, student: Any, teacher: Any, xp: ModuleType) -> Tuple[float, Any]:
        if self.kd_kind == "mse":
            diff = student - teacher
            n_tags = student.shape[1]
            return float((diff**2).sum()) / n_tags, 2.0 * diff / n_tags
        T = self.temperature
        p_teacher = softmax(teacher, T, xp=xp)
        log_p_teacher = log_softmax(teacher / T, xp=xp)
        log_p_student = log_softmax(student / T, xp=xp)
        kl = float((p_teacher * (log_p_teacher - log_p_student)).sum())
        # d/dz of T^2 * KL(p_t || softmax(z / T)) is T * (softmax(z / T) - p_t).
        return T * T * kl, T * (xp.exp(log_p_student) - p_teacher)


def _cross_entropy(log_probs: Any, probs: Any, targets: Any, xp: ModuleType) -> Tuple[float, Any]:
    rows = xp.arange(len(targets))
    loss = -float(log_probs[rows, targets].sum())
    grad = probs.copy()
    grad[rows, targets] -= 1.0
    return loss, grad


@registry.losses("spacy-compact-ner.DistillationLoss.v1")
def make_distillation_loss(
    *,
    gold_weight: float = 1.0,
    kd_weight: float = 1.0,
    pseudo_label_weight: float = 1.0,
    temperature: float = 1.0,
    kd_kind: KDKind = "kl",
) -> DistillationLoss:
    """The student's loss; each weight 0 switches a term off (gold only, KD only, ...).

    gold_weight (float): Weight of cross-entropy against gold tags.
    kd_weight (float): Weight of the distillation term against the teacher's distributions.
    pseudo_label_weight (float): Weight of cross-entropy against the teacher's argmax on tokens without gold.
    temperature (float): Softmax temperature of the "kl" distillation term (> 0).
    kd_kind (str): "kl" (KL divergence with the T^2 factor) or "mse" (squared error on logits).
    """
    return DistillationLoss(
        gold_weight=gold_weight,
        kd_weight=kd_weight,
        pseudo_label_weight=pseudo_label_weight,
        temperature=temperature,
        kd_kind=kd_kind,
    )
