"""The ID-CNN's dilated window (spacy_compact_ner/idcnn.py)."""

import numpy
import pytest
from thinc.types import Ragged

from spacy_compact_ner.idcnn import dilated_window

LENGTHS = [[5, 0, 1, 3, 7], [1], [2, 2], [12], [0, 4, 0]]


def reference_window(X: numpy.ndarray, lengths, dilation: int) -> numpy.ndarray:
    """Each token's vector with those ``dilation`` to its left and right in the same doc (zeros outside)."""
    width = X.shape[1]
    Y = numpy.zeros((X.shape[0], 3 * width), dtype=X.dtype)
    start = 0
    for length in lengths:
        for i in range(length):
            row = start + i
            Y[row, width : 2 * width] = X[row]
            if i - dilation >= 0:
                Y[row, :width] = X[row - dilation]
            if i + dilation < length:
                Y[row, 2 * width :] = X[row + dilation]
        start += length
    return Y


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_window_matches_reference_and_backprop_is_its_transpose(lengths, dilation):
    rng = numpy.random.default_rng(dilation)
    n, width = sum(lengths), 4
    X = rng.normal(size=(n, width)).astype("float32")
    model = dilated_window(dilation)
    Yr, backprop = model(Ragged(X, numpy.asarray(lengths, dtype="int32")), is_train=True)
    numpy.testing.assert_array_equal(Yr.dataXd, reference_window(X, lengths, dilation))
    # The window is linear: backprop must be its transpose, <F(X), dY> == <X, F^T(dY)>.
    dY = rng.normal(size=(n, 3 * width)).astype("float32")
    dX = backprop(Ragged(dY, Yr.lengths)).dataXd
    assert dX.shape == X.shape
    numpy.testing.assert_allclose(float((Yr.dataXd * dY).sum()), float((X * dX).sum()), rtol=1e-4, atol=1e-4)
    for row in range(n):  # each input row's gradient, one basis vector at a time
        e = numpy.zeros_like(X)
        e[row] = 1.0
        F_e = reference_window(e, lengths, dilation)
        numpy.testing.assert_allclose(dX[row].sum(), float((F_e * dY).sum()), rtol=1e-4, atol=1e-4)
