"""Banded masks as block tridiagonal matrices: the inverse on the pattern and
its derivative (covariance selection's Newton steps on grid masks)."""

import numpy as np
import pytest

import skdensity.gaussian._covariance_selection as cs
import skdensity.linalg as bt
from skdensity import covariance_selection
from skdensity.linalg import MaskPairs, block_layout
from skdensity.masks import grid_mask

from .conftest import random_gmrf, sample_gmrf


def _banded_case(case):
    """A positive definite precision and its pairs: a grid (blocks fit
    exactly or not) or a random band whose last block is padded."""
    if case == "band, padded":
        rng = np.random.default_rng(1)
        D, u = 103, 7
        offsets = np.abs(np.subtract.outer(np.arange(D), np.arange(D)))
        mask = (offsets <= u) & (rng.uniform(size=(D, D)) < 0.6)
        mask = mask | mask.T | np.eye(D, dtype=bool)
        A = np.triu(rng.normal(size=(D, D)) * mask, 1)
        P = A + A.T + np.diag(np.abs(A + A.T).sum(1) + 0.1)
        return P, MaskPairs(mask)
    shape, conn = {
        "grid 10x10, padded": ((10, 10), 8),
        "grid 28x28": ((28, 28), 8),
        "grid 20x30, 4-connected": ((20, 30), 4),
    }[case]
    P, mask = random_gmrf(shape, conn, seed=5)
    return P, MaskPairs(mask)


CASES = ["band, padded", "grid 10x10, padded", "grid 28x28", "grid 20x30, 4-connected"]


@pytest.mark.parametrize("case", CASES)
def test_selected_inverse_is_the_inverse_on_the_pattern(case):
    P, pairs = _banded_case(case)
    layout = block_layout(pairs)
    assert layout is not None and layout.n_blocks >= 2
    D, s = len(P), layout.block_size
    assert layout.n_blocks * s >= D and s >= (pairs.cols - pairs.rows).max()
    if "padded" in case:
        assert layout.n_blocks * s > D
    factors = bt.selected_inverse(*layout.blocks(pairs.from_dense(P)))
    Sigma = np.linalg.inv(P)
    np.testing.assert_allclose(
        layout.entries(*factors[2:]),
        pairs.from_dense(Sigma),
        rtol=1e-10,
        atol=1e-13 * np.abs(Sigma).max(),
    )
    # the dense form: Sigma on the block tridiagonal pattern, zero outside
    dense = layout.to_dense(*factors[2:])
    block = np.arange(D) // s
    pattern = np.abs(np.subtract.outer(block, block)) <= 1
    np.testing.assert_allclose(
        dense[pattern], Sigma[pattern], rtol=1e-10, atol=1e-13 * np.abs(Sigma).max()
    )
    assert np.all(dense[~pattern] == 0)


@pytest.mark.parametrize("case", CASES)
def test_selected_inverse_derivative_is_the_hessian_product(case):
    P, pairs = _banded_case(case)
    layout = block_layout(pairs)
    theta = pairs.from_dense(P)
    factors = bt.selected_inverse(*layout.blocks(theta))
    v = np.random.default_rng(2).normal(size=pairs.n_pairs)
    got = layout.entries(*bt.selected_inverse_derivative(factors, *layout.blocks(v, 0.0)))
    Sigma = np.linalg.inv(P)
    expected = -pairs.from_dense(Sigma @ pairs.to_dense(v) @ Sigma)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    # and it is the derivative: central differences of the selected inverse
    h = 1e-5 / np.abs(v).max()
    plus, minus = (
        layout.entries(*bt.selected_inverse(*layout.blocks(theta + t * v))[2:]) for t in (h, -h)
    )
    np.testing.assert_allclose(
        (plus - minus) / (2 * h), got, rtol=1e-5, atol=1e-7 * np.abs(got).max()
    )


def test_selected_inverse_rejects_an_indefinite_matrix():
    P, pairs = _banded_case("grid 28x28")
    P = P - 1.01 * np.linalg.eigvalsh(P)[0] * np.eye(len(P))  # one negative eigenvalue
    assert bt.selected_inverse(*block_layout(pairs).blocks(pairs.from_dense(P))) is None


def test_block_layout_only_where_it_pays():
    assert block_layout(MaskPairs(grid_mask((28, 28), 8))).block_size == 30
    assert block_layout(MaskPairs(grid_mask((1, 512), 8))).block_size == 16  # a chain
    assert block_layout(MaskPairs(grid_mask((5, 5), 8))) is None  # too small
    assert block_layout(MaskPairs(np.ones((60, 60), dtype=bool))) is None  # dense
    # wide band, few entries a row: the dense inverse's products are cheaper
    mask = np.eye(200, dtype=bool)
    mask[np.arange(100), np.arange(100, 200)] = mask[np.arange(100, 200), np.arange(100)] = True
    assert block_layout(MaskPairs(mask)) is None


def test_covariance_selection_in_blocks_matches_the_dense_inverse(monkeypatch):
    # 16x16, 8-connected: 1,203 free entries (conjugate gradients), 15 blocks of 18
    P, mask = random_gmrf((16, 16), 8, seed=6)
    S = np.cov(sample_gmrf(P, 3000, seed=2).T, bias=True)
    calls, derivative = [], bt.selected_inverse_derivative
    monkeypatch.setattr(
        cs, "selected_inverse_derivative", lambda *a: calls.append(1) or derivative(*a)
    )
    blocks, info_blocks = covariance_selection(S, mask, tol=1e-10)
    assert calls, "the block path was not taken"
    # the dense inverse: where blocks do not pay, and where the recurrence
    # fails (a factorisation the banded one passed: rounding)
    monkeypatch.setattr(cs, "selected_inverse", lambda A, B: None)
    calls.clear()
    fallback, info_fallback = covariance_selection(S, mask, tol=1e-10)
    monkeypatch.setattr(cs, "block_layout", lambda pairs: None)
    dense, info_dense = covariance_selection(S, mask, tol=1e-10)
    assert not calls
    assert info_blocks.converged and info_dense.converged and info_fallback.converged
    np.testing.assert_allclose(blocks, dense, atol=1e-8 * np.abs(dense).max())
    np.testing.assert_allclose(fallback, dense, atol=1e-12 * np.abs(dense).max())
    Sigma = np.linalg.inv(blocks)
    assert np.abs((Sigma - S)[mask]).max() <= 1e-10 * S.diagonal().max()
