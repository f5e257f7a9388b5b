"""Windowed second moments by shifted products equal the dense covariance's
entries on the window, merge exactly, and never form a D x D array."""

import numpy as np
import pytest

from skdensity.gaussian._grid_moments import GridMoments, window_offsets
from skdensity.masks import grid_mask


def correlated(n, D, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, D)) @ rng.normal(size=(D, D)) + 3 * rng.normal(size=D)


@pytest.mark.parametrize("shape", [(5, 6), (4, 5, 3), (1, 7), (6, 1, 2)])
@pytest.mark.parametrize("radius", [1, 2])
def test_entries_on_the_window_equal_the_dense_covariance(shape, radius):
    D = int(np.prod(shape))
    X = correlated(500, D)
    S = GridMoments.of(X, shape, radius, chunk_size=64).to_sparse().toarray()
    dense = np.cov(X.T, bias=True)
    # the window: channels of pixels within `radius` rows and columns
    h, w = shape[:2]
    c = shape[2] if len(shape) == 3 else 1
    iy, ix = np.divmod(np.arange(h * w), w)
    near = (np.abs(iy[:, None] - iy) <= radius) & (np.abs(ix[:, None] - ix) <= radius)
    window = np.kron(near, np.ones((c, c), dtype=bool))
    np.testing.assert_allclose(S[window], dense[window], rtol=1e-10, atol=1e-10)
    assert np.all(S[~window] == 0)
    np.testing.assert_array_equal(S, S.T)


def test_the_one_hop_window_is_the_eight_connected_mask():
    S = GridMoments.of(correlated(50, 30), (5, 6), 1).to_sparse()
    np.testing.assert_array_equal(S.toarray() != 0, grid_mask((5, 6), 8))
    assert len(window_offsets(1)) == 5 and len(window_offsets(2)) == 13


def test_chunks_and_merges_are_exact():
    X = correlated(300, 20, seed=1) + 1e4  # a large mean: the merge must not cancel
    whole = GridMoments.of(X, (4, 5), 2, chunk_size=1000)
    chunked = GridMoments.of(X, (4, 5), 2, chunk_size=7)
    merged = GridMoments.of(X[:100], (4, 5), 2).merge(GridMoments.of(X[100:], (4, 5), 2))
    for other in (chunked, merged):
        assert other.n_samples == 300
        np.testing.assert_allclose(other.mean, whole.mean, rtol=1e-13)
        np.testing.assert_allclose(other.products, whole.products, rtol=1e-9, atol=1e-9)


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match=r"shape \(n_samples, 30\)"):
        GridMoments.of(np.zeros((3, 29)), (5, 6), 1)
    with pytest.raises(ValueError, match="no samples"):
        GridMoments.of(np.zeros((0, 30)), (5, 6), 1)
    with pytest.raises(ValueError, match="image_shape"):
        GridMoments.of(np.zeros((3, 30)), (30,), 1)
    a = GridMoments.of(np.ones((3, 30)), (5, 6), 1)
    with pytest.raises(ValueError, match="cannot be merged"):
        a.merge(GridMoments.of(np.ones((3, 30)), (5, 6), 2))
