import numpy
import pytest

from spacy_compact_ner.losses import DistillationLoss, make_distillation_loss


def _numeric_grad(loss, logits, *args, eps=1e-3):
    grad = numpy.zeros_like(logits)
    for idx in numpy.ndindex(*logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (loss(plus, *args)[0] - loss(minus, *args)[0]) / (2 * eps)
    return grad


def test_gold_cross_entropy_by_hand():
    loss = DistillationLoss(gold_weight=1.0, kd_weight=0.0, pseudo_label_weight=0.0)
    logits = numpy.array([[0.0, 0.0], [numpy.log(3.0), 0.0]], dtype="float32")
    gold = numpy.array([0, 1])
    value, grad, terms = loss(logits, gold)
    # p = [0.5, 0.5] and [0.75, 0.25]: CE = -log 0.5 - log 0.25, averaged over 2 tokens.
    assert value == pytest.approx((numpy.log(2) + numpy.log(4)) / 2, rel=1e-5)
    numpy.testing.assert_allclose(grad, [[-0.25, 0.25], [0.375, -0.375]], rtol=1e-5)


def test_missing_gold_tokens_are_masked():
    loss = DistillationLoss(gold_weight=1.0, kd_weight=0.0, pseudo_label_weight=0.0)
    logits = numpy.array([[0.0, 0.0], [5.0, -5.0]], dtype="float32")
    value, grad, _ = loss(logits, numpy.array([0, -1]))
    assert value == pytest.approx(numpy.log(2) / 2, rel=1e-5)
    assert not grad[1].any()


def test_kl_with_temperature_by_hand():
    T = 2.0
    loss = DistillationLoss(gold_weight=0.0, kd_weight=1.0, pseudo_label_weight=0.0, temperature=T)
    student = numpy.array([[0.0, 0.0]], dtype="float32")
    teacher = numpy.array([[2 * T * numpy.log(3.0) / 2, 0.0]], dtype="float32")  # softmax(t/T) = [0.75, 0.25]
    value, grad, terms = loss(student, numpy.array([-1]), teacher, numpy.array([True]))
    kl = 0.75 * numpy.log(0.75 / 0.5) + 0.25 * numpy.log(0.25 / 0.5)
    assert terms["kd"] == pytest.approx(T * T * kl, rel=1e-4)
    numpy.testing.assert_allclose(grad, [[T * (0.5 - 0.75), T * (0.5 - 0.25)]], rtol=1e-4)


def test_mse_by_hand():
    loss = DistillationLoss(gold_weight=0.0, kd_weight=1.0, pseudo_label_weight=0.0, kd_kind="mse")
    student = numpy.array([[1.0, 2.0], [0.0, 0.0]], dtype="float32")
    teacher = numpy.array([[0.0, 0.0], [9.0, 9.0]], dtype="float32")
    value, grad, _ = loss(student, numpy.array([-1, -1]), teacher, numpy.array([True, False]))
    assert value == pytest.approx((1 + 4) / 2 / 2)  # mean over 2 tags, divided by 2 tokens
    numpy.testing.assert_allclose(grad, [[0.5, 1.0], [0.0, 0.0]])


def test_pseudo_labels_only_where_gold_is_missing():
    loss = DistillationLoss(gold_weight=0.0, kd_weight=0.0, pseudo_label_weight=1.0)
    student = numpy.zeros((2, 3), dtype="float32")
    teacher = numpy.array([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]], dtype="float32")
    value, grad, terms = loss(student, numpy.array([0, -1]), teacher, numpy.array([True, True]))
    assert value == pytest.approx(numpy.log(3) / 2, rel=1e-5)
    assert not grad[0].any()
    numpy.testing.assert_allclose(grad[1], numpy.array([1 / 3, 1 / 3, -2 / 3]) / 2, rtol=1e-5)


@pytest.mark.parametrize("kind", ["kl", "mse"])
def test_gradient_matches_finite_differences(kind):
    rng = numpy.random.default_rng(0)
    loss = DistillationLoss(gold_weight=0.7, kd_weight=1.3, pseudo_label_weight=0.5, temperature=3.0, kd_kind=kind)
    logits = rng.normal(size=(4, 5)).astype("float64")
    gold = numpy.array([1, -1, 3, -1])
    teacher = rng.normal(size=(4, 5))
    has_teacher = numpy.array([True, True, False, True])
    _, grad, _ = loss(logits, gold, teacher, has_teacher)

    def f(z, *args):
        return loss(z.astype("float32"), *args)

    numeric = _numeric_grad(f, logits, gold, teacher, has_teacher)
    numpy.testing.assert_allclose(grad, numeric, atol=2e-3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"temperature": -1.0}, "temperature must be > 0"),
        ({"kd_weight": -0.5}, "kd_weight must be a finite number >= 0"),
        ({"gold_weight": float("nan")}, "gold_weight must be a finite number >= 0"),
        ({"kd_kind": "js"}, "kd_kind must be 'kl' or 'mse'"),
    ],
)
def test_bad_settings_fail_early(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_distillation_loss(**kwargs)


class DeviceArray(numpy.ndarray):
    """Stands for an array on an accelerator: only ``FakeDeviceXP`` and ``FakeDeviceOps`` make them."""


class FakeDeviceXP:
    """A stand-in for cupy: numpy underneath, but it records each function called and returns
    ``DeviceArray``s."""

    def __init__(self) -> None:
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(numpy, name)
        if isinstance(attr, type) or not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append(name)
            out = attr(*args, **kwargs)
            return out.view(DeviceArray) if isinstance(out, numpy.ndarray) else out

        return call


class NoNumpy:
    """Put in place of a module's ``numpy``: any use of it on the loss path fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"numpy.{name} called on the loss path instead of ops.xp")


def forbid_numpy(monkeypatch) -> None:
    """The loss and the softmax it uses may not call numpy's module functions."""
    import spacy_compact_ner.decoding as decoding
    import spacy_compact_ner.losses as losses

    for module in (losses, decoding):
        monkeypatch.setattr(module, "numpy", NoNumpy(), raising=False)


@pytest.mark.parametrize("kind", ["kl", "mse"])
def test_loss_runs_on_the_given_array_module(kind, monkeypatch):
    rng = numpy.random.default_rng(1)
    loss = DistillationLoss(gold_weight=0.7, kd_weight=1.3, pseudo_label_weight=0.5, temperature=2.0, kd_kind=kind)
    args = (
        rng.normal(size=(5, 5)).astype("float32"),
        numpy.array([1, -1, 3, -1, 0]),
        rng.normal(size=(5, 5)).astype("float32"),
        numpy.array([True, True, False, True, True]),
    )
    expected = loss(*args)
    xp = FakeDeviceXP()
    forbid_numpy(monkeypatch)
    value, grad, terms = loss(*[a.view(DeviceArray) for a in args], xp=xp)
    assert isinstance(grad, DeviceArray)
    assert {"zeros", "exp", "log", "flatnonzero", "arange"} <= set(xp.calls)
    assert value == pytest.approx(expected[0], rel=1e-6)
    numpy.testing.assert_allclose(grad, expected[1], rtol=1e-6)
    assert terms == pytest.approx(expected[2], rel=1e-6)
    assert all(terms[name] > 0 for name in ("gold", "kd", "pseudo_label"))


def test_active_terms_are_those_with_a_weight():
    assert DistillationLoss().active_terms == ("gold", "kd", "pseudo_label")
    assert DistillationLoss(kd_weight=0.0, pseudo_label_weight=0.0).active_terms == ("gold",)
    assert DistillationLoss(gold_weight=2.0, kd_weight=0.5).weights == {"gold": 2.0, "kd": 0.5, "pseudo_label": 1.0}
