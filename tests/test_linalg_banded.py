"""Banded linear algebra, Cholesky factors, eigenpairs and the projection
behind the solvers (grid masks are banded)."""

import numpy as np
import pytest
import scipy.linalg as la
import scipy.sparse as sp

import skdensity.linalg._banded as banded
import skdensity.linalg._cholesky as cholesky
import skdensity.linalg._eigen as eigen
import skdensity.linalg._pd_projection as projection
from skdensity.gaussian._covariance_selection import _DenseInverse, _SchwarzPreconditioner
from skdensity.linalg import (
    CholeskyFactor,
    MaskPairs,
    banded_cholesky,
    bottom_eig,
    minimize_pd,
    upper_band,
)
from skdensity.linalg._banded import shift_below_spectrum
from skdensity.masks import grid_mask

from .conftest import random_gmrf


@pytest.mark.parametrize("shape, conn", [((28, 28), 8), ((20, 30), 4), ((1, 300), 8)])
def test_banded_inverse_matches_dense(shape, conn):
    P, _ = random_gmrf(shape, conn)
    pairs = MaskPairs(grid_mask(shape, conn))
    factor = pairs.cholesky(pairs.from_dense(P))
    B = np.random.default_rng(0).normal(size=(len(P), 3))
    np.testing.assert_allclose(factor.solve(B), np.linalg.solve(P, B), rtol=1e-9, atol=1e-12)


def _gmrf_factor(shape, conn):
    """A random GMRF precision and its pattern Cholesky factor (banded above 64 pixels)."""
    P, _ = random_gmrf(shape, conn)
    pairs = MaskPairs(grid_mask(shape, conn))
    factor = CholeskyFactor.of_pattern(pairs.rows, pairs.cols, pairs.from_dense(P), len(P))
    assert factor.banded == (len(P) > 64)
    return P, factor


@pytest.mark.parametrize("shape, conn", [((28, 28), 8), ((5, 5), 4)])  # banded, dense
def test_cholesky_inverse_and_log_det(shape, conn):
    P, factor = _gmrf_factor(shape, conn)
    inv = factor.inverse()
    assert inv.flags.c_contiguous
    np.testing.assert_allclose(inv, np.linalg.inv(P), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(factor.log_det(), np.linalg.slogdet(P)[1], rtol=1e-12)
    np.testing.assert_allclose(factor.lower(), np.linalg.cholesky(P), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shape, conn", [((28, 28), 8), ((5, 5), 4)])  # banded, dense
def test_inverse_sqrt_rows_has_the_inverse_covariance(shape, conn):
    # Rows z mapped to M z with M M' = inv(P): exactly, M' M... checked on
    # the identity (rows e_i give M' row-wise, and (M')' M' = inv(P)).
    P, factor = _gmrf_factor(shape, conn)
    Mt = factor.inverse_sqrt_rows(np.eye(len(P)))
    np.testing.assert_allclose(Mt.T @ Mt, np.linalg.inv(P), rtol=1e-9, atol=1e-12)
    # in place on a C-ordered block of rows, and banded == dense factor
    Z = np.random.default_rng(0).normal(size=(7, len(P)))
    expected = la.solve_triangular(np.linalg.cholesky(P), Z.T, lower=True, trans="T").T
    out = factor.inverse_sqrt_rows(Z)
    assert np.shares_memory(out, Z)
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)


def _random_mask(n, density, seed):
    rng = np.random.default_rng(seed)
    A = np.triu(rng.random((n, n)) < density, 1)
    return A | A.T | np.eye(n, dtype=bool)


@pytest.mark.parametrize(
    "mask",
    [grid_mask((7, 6), 8), grid_mask((5, 5), 4), _random_mask(30, 0.15, 0)],
    ids=["grid8", "grid4", "random graph"],
)
def test_local_inverse_hessian_is_sum_of_block_inverses(mask):
    pairs = MaskPairs(mask)
    D = mask.shape[0]
    A = np.random.default_rng(0).normal(size=(D, D))
    Sigma = A @ A.T / D + np.eye(D)
    r, c, w = pairs.rows, pairs.cols, pairs.weights
    H = Sigma[np.ix_(r, r)] * Sigma[np.ix_(c, c)] + Sigma[np.ix_(r, c)] * Sigma[np.ix_(c, r)]
    H *= 0.5 * np.outer(w, w)
    v = np.random.default_rng(1).normal(size=pairs.n_pairs)
    np.testing.assert_allclose(  # H is the Hessian the solver's products apply
        H @ v, w * pairs.col_dots(Sigma, pairs.to_sparse(v) @ Sigma), rtol=1e-10
    )
    expected = np.zeros_like(H)
    for a in range(D):  # each feature with its neighbours of larger index
        nodes = [a] + [b for b in range(a + 1, D) if mask[a, b]]
        ids = np.unique([pairs.pair_ids([i], [j])[0] for i in nodes for j in nodes if mask[i, j]])
        expected[np.ix_(ids, ids)] += np.linalg.inv(H[np.ix_(ids, ids)])
    np.testing.assert_allclose(
        _SchwarzPreconditioner.of(pairs).matrix(_DenseInverse(Sigma, pairs)).toarray(),
        expected,
        atol=1e-12 * np.abs(expected).max(),
    )


def test_banded_cholesky_detects_indefinite():
    P, _ = random_gmrf((16, 16), 8)
    ab = upper_band(sp.csr_array(P))
    lam = la.eigvalsh(P)[0]
    assert banded_cholesky(ab, 0.99 * lam) is not None
    assert banded_cholesky(ab, 1.01 * lam) is None
    shift, factor = shift_below_spectrum(upper_band(sp.csr_array(P - 2 * lam * np.eye(len(P)))))
    assert factor is not None and shift < -lam  # below the shifted spectrum's bottom


@pytest.mark.parametrize("offset", [0.0, 1.5, 40.0])
def test_bottom_eig_matches_lapack_definite_or_not(offset):
    P, _ = random_gmrf((16, 16), 8, seed=3)
    A = P - offset * np.eye(len(P))  # positive definite, then indefinite
    w, U = bottom_eig(sp.csr_array(A), k=2)
    np.testing.assert_allclose(w, la.eigvalsh(A)[:2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(A @ U, U * w, atol=1e-8)


@pytest.mark.parametrize("case", ["near", "two columns", "shift above", "not certified"])
def test_bottom_near_is_the_smallest_eigenpair(case, monkeypatch):
    # From a close guess of the bottom eigenvector and a shift just below
    # it, the eigenpair comes from two inverse iterations, certified by a
    # factorisation; when it cannot be (two pinned columns, a shift above
    # the bottom) the general eigensolver answers. Either way: LAPACK's.
    P, mask = random_gmrf((16, 16), 8, seed=5)
    pairs = MaskPairs(mask)
    lam, U = la.eigh(P)
    rng = np.random.default_rng(0)
    V = (U[:, :1] + 1e-4 * rng.normal(size=(len(P), 1))) * 3.0
    shift = lam[0] * (1 - 1e-6)
    if case == "two columns":
        V = np.hstack([V, U[:, 1:2]])
    elif case == "shift above":
        shift = 0.5 * (lam[0] + lam[1])
    elif case == "not certified":  # inverse iteration stays near the second pair
        V = U[:, 1:2].copy()
        shift = lam[0] - 100 * (lam[1] - lam[0])
    calls = []
    monkeypatch.setattr(
        projection, "bottom_eig", lambda *a, **k: calls.append(1) or bottom_eig(*a, **k)
    )
    dual = projection._DualProjection(pairs.from_dense(P), lambda v: v, pairs, eps=1.0, tol=1e-6)
    w, u = dual.bottom_near(pairs.from_dense(P), V, shift)
    assert len(calls) == (0 if case == "near" else 1)
    assert w[0] == pytest.approx(lam[0], rel=1e-9)
    np.testing.assert_allclose(P @ u[:, 0], w[0] * u[:, 0], atol=1e-8 * lam[-1])


@pytest.mark.parametrize("case", ["definite", "indefinite", "cluster"])
def test_bottom_eig_lanczos_for_the_smallest_pair(case, monkeypatch):
    # k = 1 on a banded matrix: shift-invert Lanczos of our own, no ARPACK;
    # a tight bottom cluster does not converge in 40 steps and goes to
    # ARPACK. Either way LAPACK's smallest eigenpair.
    from functools import partial
    from pathlib import Path

    monkeypatch.setattr(
        eigen, "_shift_invert_lanczos", partial(eigen._shift_invert_lanczos, max_steps=40)
    )

    if case == "cluster":
        A = sp.csr_array(sp.load_npz(Path(__file__).with_name("clustered_precision.npz")))
    else:
        P, _ = random_gmrf((16, 16), 8, seed=3)
        A = sp.csr_array(P - (1.5 if case == "indefinite" else 0.0) * np.eye(len(P)))
    arpack = []
    eigsh = eigen.eigsh
    monkeypatch.setattr(eigen, "eigsh", lambda *a, **k: arpack.append(1) or eigsh(*a, **k))
    w, U = bottom_eig(A)
    assert bool(arpack) == (case == "cluster")
    expected = la.eigvalsh(A.toarray())[0]
    assert w[0] == pytest.approx(expected, rel=1e-11, abs=1e-11)
    np.testing.assert_allclose(A @ U[:, 0], w[0] * U[:, 0], atol=1e-9 * abs(A).max())


def test_banded_and_dense_preconditioners_reach_the_same_optimum(monkeypatch):
    # The projections of minimize_pd are preconditioned by a banded solve
    # for grid masks and a dense one otherwise: same constrained optimum.
    pairs = MaskPairs(grid_mask((10, 10), 8))
    P, _ = random_gmrf((10, 10), 8)
    target = pairs.from_dense(P) + 0.3 * np.random.default_rng(0).normal(size=pairs.n_pairs)

    def fg(x):
        r = x - target
        return 0.5 * np.sum(pairs.weights * r * r), pairs.weights * r

    x0 = pairs.from_dense(np.eye(100) * 20.0)
    assert banded.narrow_band(100, 11)
    runs = {}
    for use_band in (True, False):
        for module in (banded, cholesky):
            monkeypatch.setattr(module, "narrow_band", lambda n, u, b=use_band: b)
        runs[use_band] = minimize_pd(fg, x0, pairs, eps=0.5, tol=1e-7)
    band, dense = runs[True], runs[False]
    assert band.converged and dense.converged
    np.testing.assert_allclose(band.objective, dense.objective, rtol=1e-10)
    np.testing.assert_allclose(band.x, dense.x, rtol=1e-6, atol=1e-7)
    assert band.min_eigenvalue >= 0.5 * (1 - 1e-9)
    assert band.min_eigenvalue < 0.6  # the constraint is active


def test_bottom_eig_resolves_a_tight_cluster_without_dense_fallback(monkeypatch):
    # A precision from a 4-connected conditional NCE fit on MNIST: six
    # eigenvalues within 4e-7 of each other (relative 5e-6) next to the
    # smallest. ARPACK with its
    # default basis did not converge on it (the dense fallback then ran,
    # after 8 s); a wider basis must resolve it, so LAPACK is forbidden here.
    from pathlib import Path

    A = sp.load_npz(Path(__file__).with_name("clustered_precision.npz"))
    expected = np.linalg.eigvalsh(A.toarray())[:4]
    assert expected[3] - expected[1] < 5e-6 * expected[1]  # the cluster

    def no_dense(*args, **kwargs):
        raise AssertionError("fell back to the dense eigensolver")

    monkeypatch.setattr(la, "eigh", no_dense)
    w, U = bottom_eig(sp.csr_array(A), k=4)
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    np.testing.assert_allclose(A @ U, U * w, atol=1e-10)


@pytest.mark.parametrize("n, u, k", [(50, 3, 5), (700, 70, 300), (1000, 130, 40)])
def test_blocked_band_solve_matches_lapack(n, u, k):
    from skdensity.linalg._banded import upper_band_solve

    rng = np.random.default_rng(0)
    ab = np.zeros((u + 1, n))
    ab[-1] = 2 + rng.random(n)
    ab[:-1] = rng.uniform(-0.02, 0.02, (u, n))
    for d in range(u):  # entries above the matrix's first rows are unused
        ab[d, : u - d] = 0
    Z = rng.standard_normal((n, k))
    expected, info = la.lapack.dtbtrs(ab, Z, uplo="U", trans="N")
    assert info == 0
    np.testing.assert_allclose(upper_band_solve(ab, Z), expected, rtol=1e-12, atol=1e-12)


def test_samples_of_a_wide_band_use_the_blocked_solve_and_agree():
    from skdensity.linalg._cholesky import CholeskyFactor

    rng = np.random.default_rng(1)
    n, u = 600, 80
    ab = np.zeros((u + 1, n))
    ab[-1] = 3 + rng.random(n)
    ab[:-1] = rng.uniform(-0.01, 0.01, (u, n))
    for d in range(u):
        ab[d, : u - d] = 0
    factor = CholeskyFactor(ab, banded=True)
    Z = rng.standard_normal((300, n))
    many = factor.inverse_sqrt_rows(Z.copy())  # blocked (300 rows)
    few = np.vstack([factor.inverse_sqrt_rows(Z[i : i + 100].copy()) for i in range(0, 300, 100)])
    np.testing.assert_allclose(many, few, rtol=1e-12, atol=1e-12)
