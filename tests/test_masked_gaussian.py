"""Correctness of the masked Gaussian family: solvers, densities, sampling."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from skdensity import (
    MaskedGaussianMLE,
    MaskedGaussianSM,
    covariance_selection,
    masked_score_matching,
)
from skdensity.gaussian._covariance_selection import _Newton
from skdensity.gaussian._decoupling import decoupled_spans
from skdensity.gaussian._score_matching import (
    _certificate,
    _solve_score_matching,
    score_matching_hessian,
    score_matching_system,
)
from skdensity.linalg import MaskPairs
from skdensity.masks import grid_mask

from .conftest import random_gmrf, sample_gmrf

ESTIMATORS = [MaskedGaussianSM, MaskedGaussianMLE]


def rel_fro(A, B):
    return np.linalg.norm(A - B) / np.linalg.norm(B)


def check_sm_kkt(S, P, V, eps, mask, tol):
    """Independent check of the KKT conditions of constrained SM."""
    Z = V @ V.T
    M = 0.5 * (S @ P + P @ S) - np.eye(len(S))
    assert np.abs((M - Z)[mask]).max() < 1e-6 * max(1, np.abs(M).max())
    assert np.all(P[~mask] == 0)
    lam = np.linalg.eigvalsh(P)
    assert lam[0] >= eps * (1 - tol)
    if V.size:
        assert abs(np.trace(Z @ (P - eps * np.eye(len(S))))) <= 10 * tol * eps * np.trace(Z)


def test_sm_hessian_matches_objective():
    # H is the Hessian of J(theta) = 1/2 tr(L S L) - tr(L): check on random theta.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 12))
    S = np.cov(X.T)
    pairs = MaskPairs(grid_mask((3, 4), 8))
    H = score_matching_hessian(S, pairs).toarray()
    np.testing.assert_allclose(H, H.T, atol=1e-14)
    t = rng.normal(size=pairs.n_pairs)
    L = pairs.to_dense(t)
    J = 0.5 * np.trace(L @ S @ L) - np.trace(L)
    assert np.isclose(0.5 * t @ H @ t - pairs.is_diag @ t, J)


def test_auto_eps_does_not_depend_on_earlier_calls():
    # ARPACK's own random start continues its seed from call to call (the
    # top eigenvalue then moved in its last bits between fits); the bound
    # must be a function of S alone.
    from scipy.sparse.linalg import eigsh

    from skdensity.gaussian._score_matching import resolve_eps

    S = np.cov(np.random.default_rng(0).normal(size=(300, 64)).T) + 0.01 * np.eye(64)
    first = resolve_eps("auto", S)
    eigsh(S, k=1, which="LA")  # advances ARPACK's seed
    assert resolve_eps("auto", S) == first
    assert first == pytest.approx(0.5 / np.linalg.eigvalsh(S)[-1], rel=1e-10)


@pytest.mark.parametrize("pattern", ["grid8", "random graph"])
def test_sm_system_matches_sparse_hessian(pattern):
    # The banded assembly (grid masks) and the sparse fallback (other
    # graphs) give the products and solves of the sparse Hessian.
    rng = np.random.default_rng(1)
    if pattern == "grid8":
        mask = grid_mask((12, 12), 8)
    else:
        mask = rng.random((144, 144)) < 0.03
        mask = mask | mask.T | np.eye(144, dtype=bool)
    S = np.cov(rng.normal(size=(400, 144)).T)
    pairs = MaskPairs(mask)
    H = score_matching_hessian(S, pairs)
    system = score_matching_system(S, pairs)
    v = rng.normal(size=pairs.n_pairs)
    np.testing.assert_allclose(system.hessp(v), H @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(system.solve(H @ v), v, rtol=1e-8, atol=1e-8)


def test_sm_unconstrained_when_pd():
    P, mask = random_gmrf((4, 4), 8, seed=1)
    S = np.linalg.inv(P)  # population covariance: SM recovers P exactly
    est, info = masked_score_matching(S, mask)
    np.testing.assert_allclose(est, P, atol=1e-9)
    assert info.active_rank == 0 and info.n_iter == 0


def test_sm_constrained_on_mnist_is_certified(mnist_split):
    X, _ = mnist_split
    S = np.cov(X.T, bias=True) + 0.01 * np.eye(784)
    mask = grid_mask((28, 28), 8)
    P, info = masked_score_matching(S, mask, eps=0.1)
    # the known fact: the unconstrained optimum is indefinite on MNIST
    assert info.unconstrained_min_eigenvalue < -1
    assert info.converged and info.active_rank >= 1
    check_sm_kkt(S, P, info.dual_factor, 0.1, mask, 1e-6)


def test_sm_constraint_is_optimal_against_feasible_perturbations(mnist_split):
    # Any feasible point nearby has a larger SM objective.
    X, _ = mnist_split
    X = X[:2000, :]
    S = np.cov(X.T, bias=True) + 0.01 * np.eye(784)
    mask = grid_mask((28, 28), 4)
    P, info = masked_score_matching(S, mask, eps=0.1)
    J = lambda L: 0.5 * np.trace(L @ S @ L) - np.trace(L)  # noqa: E731
    pairs = MaskPairs(mask)
    rng = np.random.default_rng(0)
    for _ in range(5):
        D = pairs.to_dense(rng.normal(size=pairs.n_pairs) * 1e-3)
        Q = P + D
        shift = max(0.0, 0.1 - np.linalg.eigvalsh(Q)[0])
        Q += shift * np.eye(784)  # back into the feasible set
        assert J(Q) >= J(P) - 1e-9


@pytest.mark.parametrize("n_small, n_large", [(2000, 50000)])
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_recovery_8x8_improves_with_n(Est, n_small, n_large):
    P, mask = random_gmrf((8, 8), 8, seed=0)
    errs = []
    for n in (n_small, n_large):
        X = sample_gmrf(P, n, seed=n)
        est = Est(reg=0.0).fit(X)
        errs.append(rel_fro(est.precision_, P))
        assert np.all(est.precision_[~mask] == 0)
    assert errs[1] < 0.5 * errs[0]
    assert errs[1] < 0.03


@pytest.mark.slow
def test_recovery_28x28():
    P, mask = random_gmrf((28, 28), 8, seed=3)
    errs = {}
    for n in (2000, 50000):
        X = sample_gmrf(P, n, seed=n)
        for Est in ESTIMATORS:
            est = Est(reg=0.0).fit(X)
            errs[Est.__name__, n] = rel_fro(est.precision_, P)
    for name in ("MaskedGaussianSM", "MaskedGaussianMLE"):
        assert errs[name, 50000] < 0.4 * errs[name, 2000], errs


def test_mle_kkt_on_mnist_and_beats_sm(mnist_split):
    X, X_test = mnist_split
    mle = MaskedGaussianMLE().fit(X)
    S = mle.empirical_covariance_.toarray() + 0.01 * np.eye(784)  # on the 5x5 window
    mask = mle.mask_.toarray()
    assert mle.kkt_residual_ < 1e-8 and mle.min_eigenvalue_ > 0
    assert np.abs((mle.covariance_ - S)[mask]).max() < 1e-8 * S.diagonal().max()
    assert np.all(mle.precision_.toarray()[~mask] == 0)
    sm = MaskedGaussianSM().fit(X)
    assert sm.min_eigenvalue_ >= sm.eps_ * (1 - 1e-6) and sm.kkt_residual_ < 1e-6
    # MLE maximises the training likelihood within the family
    assert mle.score(X) > sm.score(X)
    # both close on held-out data (notes: 633.75 for the MLE on this split)
    assert abs(mle.score(X_test) - 633.75) < 0.05
    assert mle.score(X_test) - 5 < sm.score(X_test) < mle.score(X_test)


def test_mle_cg_path_matches_dense():
    P, mask = random_gmrf((5, 5), 8, seed=2)
    X = sample_gmrf(P, 500)
    S = np.cov(X.T, bias=True)
    dense, i1 = covariance_selection(S, mask)
    cg, i2 = covariance_selection(S, mask, max_dense_pairs=0)
    assert i1.converged and i2.converged
    np.testing.assert_allclose(cg, dense, atol=1e-7 * np.abs(dense).max())


def test_mle_start_does_not_matter():
    # The default start is score matching to a loose tolerance; an accurate
    # start and the diagonal start reach the same optimum, with no warning.
    P, mask = random_gmrf((6, 6), 8, seed=4)
    S = np.cov(sample_gmrf(P, 2000).T, bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default, info = covariance_selection(S, mask, max_dense_pairs=0)
    accurate, _ = masked_score_matching(S, mask, tol=1e-10)
    for init in (accurate, np.diag(1 / np.diag(S))):
        other, _ = covariance_selection(S, mask, init=init, max_dense_pairs=0)
        np.testing.assert_allclose(other, default, atol=1e-7 * np.abs(default).max())
    assert info.converged


def test_decoupled_spans():
    # 4x4 grid; pixels 0-3 (top row) and 5 constant; column 2 splits the rest
    mask = grid_mask((4, 4), 4)
    pairs = MaskPairs(mask)
    S = np.eye(16)
    for a, b in zip(pairs.rows, pairs.cols):
        if a != b and a >= 4 and b >= 4 and 5 not in (a, b) and a % 4 != 2 and b % 4 != 2:
            S[a, b] = S[b, a] = 0.1
    labels, spans = decoupled_spans(pairs, pairs.from_dense(S))
    # components {4, 8, 9, 12, 13} and {7, 11, 15}, the rest alone; the two
    # coupled ones interleave (ranges 4-13 and 7-15): one span
    assert spans == [(4, 16)]
    assert len({labels[i] for i in (4, 8, 9, 12, 13)}) == 1
    assert labels[7] == labels[11] == labels[15] != labels[8]
    assert len(set(labels[[0, 1, 2, 3, 5, 6, 10, 14, 4, 7]])) == 10
    S[4, 8] = S[8, 4] = 0.0  # now 4 is alone and the spans are 7-15 and 8-13: still one
    assert decoupled_spans(pairs, pairs.from_dense(S))[1] == [(7, 16)]
    S[7, 11] = S[11, 7] = S[11, 15] = S[15, 11] = 0.0  # only 8-13 remains coupled
    assert decoupled_spans(pairs, pairs.from_dense(S))[1] == [(8, 14)]


def test_mle_splits_decoupled_features_exactly():
    # Constant pixels (as on MNIST's border) have zero covariance with every
    # neighbour: the MLE is block diagonal and each block is solved apart.
    P, mask = random_gmrf((8, 8), 8, seed=3)
    X = sample_gmrf(P, 3000, seed=1)
    X[:, [0, 1, 2, 7, 8, 27, 36, 63]] = 0.0  # corner, edge and interior pixels
    S = np.cov(X.T, bias=True) + 0.01 * np.eye(64)
    pairs = MaskPairs(mask)
    labels, spans = decoupled_spans(pairs, pairs.from_dense(S))
    assert spans == [(3, 63)]  # the leading and trailing pixels in closed form
    precision, info = covariance_selection(S, mask, max_dense_pairs=0)
    assert info.converged
    # certified on the whole problem, not only on the span
    Sigma = np.linalg.inv(precision)
    assert np.abs((Sigma - S)[mask]).max() <= 1e-8 * S.diagonal().max()
    assert np.all(precision[~mask] == 0) and np.all(precision[27, np.arange(64) != 27] == 0)
    assert info.min_eigenvalue == pytest.approx(np.linalg.eigvalsh(precision)[0], rel=1e-8)
    # the same optimum as Newton on the whole, undivided problem
    newton = _Newton(S, pairs, scale=S.diagonal().max(), max_dense_pairs=0, verbose=0)
    whole, _ = newton.run(tol=1e-10, max_iter=100, init=None)
    whole = pairs.to_dense(whole)
    np.testing.assert_allclose(precision, whole, atol=1e-7 * np.abs(whole).max())


def test_decoupled_feature_with_zero_variance_is_a_clear_error():
    # a constant pixel without a variance floor: S is singular there
    P, mask = random_gmrf((6, 6), 8, seed=3)
    S = np.cov(sample_gmrf(P, 2000, seed=1).T, bias=True)
    S[[0, 20], :] = S[:, [0, 20]] = 0.0
    S[20, 20] = 1.0  # a lone feature the score matching bound binds on (eps=2)
    with pytest.raises(ValueError, match=r"feature\(s\) \[0\] have zero variance"):
        covariance_selection(S, mask)
    with pytest.raises(ValueError, match=r"feature\(s\) \[0\] have zero variance"):
        masked_score_matching(S, mask, eps=2.0)


@pytest.mark.parametrize("eps", ["auto", 2.0])
def test_sm_splits_decoupled_features_exactly(eps):
    # Features 0, 1, 2, 7, 8, 27, 36, 63 uncorrelated with the rest, variance 1;
    # the others coupled, variances ~0.01 (precision ~100). eps="auto" (< 0.5)
    # leaves the bound inactive on the lone features; eps=2 binds on all
    # eight (1 / S_aa = 1): an 8-fold pinned eigenvalue, closed form once split.
    P, mask = random_gmrf((8, 8), 8, seed=3)
    S = 0.01 * np.cov(sample_gmrf(P, 3000, seed=1).T, bias=True) + 1e-4 * np.eye(64)
    lone = [0, 1, 2, 7, 8, 27, 36, 63]
    S[lone, :] = S[:, lone] = 0.0
    S[lone, lone] = 1.0
    precision, info = masked_score_matching(S, mask, eps=eps, tol=1e-8)
    pairs = MaskPairs(mask)
    # certified on the whole problem, multiplier included
    lam_min = np.linalg.eigvalsh(precision)[0]
    kkt = _certificate(
        score_matching_hessian(S, pairs).dot,
        pairs.from_dense(precision),
        lam_min,
        info.dual_factor,
        info.eps,
        pairs,
    )
    assert info.converged and kkt < 1e-8
    assert info.min_eigenvalue == pytest.approx(lam_min, rel=1e-8)
    assert info.active_rank == (8 if eps == 2.0 else 0)
    assert precision[0, 0] == pytest.approx(1.0 if eps == "auto" else 2.0, rel=1e-12)
    assert np.count_nonzero(precision[27]) == 1
    if eps == "auto":  # the undivided solver agrees where it can
        whole, _ = _solve_score_matching(S, pairs, eps=info.eps, tol=1e-8, max_iter=5000)
        whole = pairs.to_dense(whole)
        np.testing.assert_allclose(precision, whole, atol=1e-7 * np.abs(whole).max())


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_partial_fit_equals_fit_with_constant_features(Est):
    P, _ = random_gmrf((5, 5), 8, seed=6)
    X = sample_gmrf(P, 900, seed=2)
    X[:, [0, 1, 12, 24]] = 3.0  # constant: decoupled from every neighbour
    full = Est().fit(X)
    inc = Est()
    for chunk in np.array_split(X, [300, 600]):
        inc.partial_fit(chunk)
    np.testing.assert_allclose(
        inc.precision_.toarray(),
        full.precision_.toarray(),
        atol=1e-6 * np.abs(full.precision_).max(),
    )
    assert (
        full.precision_[12, 12] == pytest.approx(1 / full.reg)
        and np.count_nonzero(full.precision_.toarray()[12]) == 1
    )


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_score_samples_equals_scipy(Est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 6)) @ rng.normal(size=(6, 6)) + 3
    est = Est(image_shape=(2, 3)).fit(X)
    ref = multivariate_normal(est.location_, est.covariance_).logpdf(X[:10])
    np.testing.assert_allclose(est.score_samples(X[:10]), ref, rtol=1e-10)
    assert np.isclose(est.score(X), est.score_samples(X).mean())


def test_smoothed_held_out_score_identity():
    # The docs and benchmarks score held-out data smoothed like the training
    # data in closed form: E log p(x + n) = log p(x) - reg / 2 tr(Lambda),
    # n ~ N(0, reg I). Monte Carlo over the smoothing noise agrees.
    P, _ = random_gmrf((4, 4), 8, seed=1)
    X = sample_gmrf(P, 3000, seed=2)
    reg = 0.3
    est = MaskedGaussianSM(reg=reg).fit(X[:2000])
    X_test = X[2000:2200]
    closed = est.score(X_test) - 0.5 * reg * est.precision_.trace()
    rng = np.random.default_rng(0)
    draws = np.array(
        [est.score(X_test + np.sqrt(reg) * rng.standard_normal(X_test.shape)) for _ in range(400)]
    )
    se = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - closed) < 4 * se, (draws.mean(), closed, se)
    assert abs(est.score(X_test) - closed) > 40 * se  # the smoothing does matter here


@pytest.mark.parametrize("shape, conn", [((28, 28), 8), ((20, 30), 4)])
def test_banded_score_samples_equals_dense_formula(shape, conn):
    # Grid masks score along pixel offsets in row blocks on two threads
    # (here several blocks per thread): the dense textbook formula agrees.
    P, _ = random_gmrf(shape, conn, seed=3)
    X = sample_gmrf(P, 2500, seed=5) + 0.5
    est = MaskedGaussianSM(image_shape=shape, connectivity=conn).fit(X)
    Xc = X - est.location_
    P = est.precision_.toarray()
    _, log_det = np.linalg.slogdet(P)
    ref = -0.5 * np.einsum("ij,jk,ik->i", Xc, P, Xc) + 0.5 * (
        log_det - X.shape[1] * np.log(2 * np.pi)
    )
    np.testing.assert_allclose(est.score_samples(X), ref, rtol=1e-11)
    np.testing.assert_allclose(est.score_samples(X[:1]), ref[:1], rtol=1e-11)


@pytest.mark.parametrize("method", ["cholesky", "sqrtm"])
def test_samplers_match_model_covariance(method):
    P, _ = random_gmrf((3, 3), 8, seed=4)
    X = sample_gmrf(P, 3000, seed=1) + 2.0
    est = MaskedGaussianSM(reg=0.0).fit(X)
    Y = est.sample(200_000, random_state=0, method=method)
    assert Y.shape == (200_000, 9)
    np.testing.assert_allclose(Y.mean(0), est.location_, atol=0.02)
    C = est.covariance_
    err = np.abs(np.cov(Y.T) - C) / np.sqrt(np.outer(np.diag(C), np.diag(C)))
    assert err.max() < 0.02  # ~ 4 standard errors of a correlation at n=2e5


def test_two_samplers_same_distribution():
    P, _ = random_gmrf((3, 3), 8, seed=5)
    est = MaskedGaussianMLE(reg=0.0).fit(sample_gmrf(P, 2000))
    A = est.sample(100_000, random_state=1, method="cholesky")
    B = est.sample(100_000, random_state=2, method="sqrtm")
    assert np.abs(np.cov(A.T) - np.cov(B.T)).max() < 0.03 * np.abs(est.covariance_).max()


def test_sm_samples_spread_like_data(mnist_split):
    # eps="auto" keeps the pinned direction's variance at data scale: samples
    # have per-pixel spread comparable to the data's (eps=1e-3 would not).
    X, _ = mnist_split
    sm = MaskedGaussianSM().fit(X)
    Y = sm.sample(2000, random_state=0)
    ratio = Y.std(0).mean() / X.std(0).mean()
    assert 0.7 < ratio < 1.6
    with warnings.catch_warnings():
        # A tiny eps is the dual solver's hard case (KKT ~1e-5, not 1e-6);
        # only the spread of its samples matters here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        tiny = MaskedGaussianSM(eps=1e-3).fit(X).sample(2000, random_state=0)
    assert tiny.std(0).mean() / X.std(0).mean() > 2 * ratio


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_partial_fit_equals_fit(Est):
    P, _ = random_gmrf((4, 4), 8, seed=6)
    X = sample_gmrf(P, 900, seed=2) * 10 + 5
    full = Est().fit(X)
    inc = Est()
    for chunk in np.array_split(X, [2, 300, 301]):  # includes a one-row chunk
        inc.partial_fit(chunk)
    assert inc.n_samples_seen_ == 900
    np.testing.assert_allclose(inc.location_, full.location_, rtol=1e-12)
    np.testing.assert_allclose(
        inc.empirical_covariance_.toarray(),
        full.empirical_covariance_.toarray(),
        rtol=1e-11,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        inc.precision_.toarray(),
        full.precision_.toarray(),
        atol=1e-6 * np.abs(full.precision_).max(),
    )


def test_partial_fit_first_batch_too_small():
    with pytest.raises(ValueError, match="at least 2 samples"):
        MaskedGaussianSM().partial_fit(np.ones((1, 4)))


def test_assume_centered():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 9)) + 1.0
    est = MaskedGaussianMLE(assume_centered=True).fit(X)
    assert np.all(est.location_ == 0)
    window = est.empirical_covariance_
    np.testing.assert_allclose(window.toarray(), (X.T @ X / 400) * (window.toarray() != 0))
    assert window.nnz == 81  # a 3x3 image: every pair is within the 5x5 window


def test_user_mask_any_graph():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    mask = np.eye(5, dtype=bool)
    mask[0, 4] = mask[4, 0] = True
    est = MaskedGaussianMLE(mask=mask).fit(X)
    assert np.array_equal(est.precision_.toarray() != 0, mask)


@pytest.mark.parametrize("kind", ["grid", "grid_with_nodes_removed", "random_graph"])
def test_masked_products_match_dense(kind):
    rng = np.random.default_rng(0)
    if kind == "grid":
        mask = grid_mask((6, 7), 8)  # 5 diagonals, one run each
    elif kind == "grid_with_nodes_removed":
        # what decoupled constant pixels leave: runs with gaps, shifted diagonals
        keep = np.setdiff1d(np.arange(20 * 20), [0, 1, 2, 19, 20, 40, 60, 61, 99, 100, 380])
        mask = grid_mask((20, 20), 8)[np.ix_(keep, keep)]
    else:
        B = rng.random((200, 200)) < 0.02
        mask = B | B.T | np.eye(200, dtype=bool)  # scattered: the gather path
    pairs = MaskPairs(mask)
    assert (pairs._segments is None) == (kind == "random_graph")
    if kind == "grid_with_nodes_removed":
        assert len(pairs._segments) > 5
    D = mask.shape[0]
    A, C = rng.normal(size=(2, D, 5))
    np.testing.assert_allclose(pairs.row_dots(A, C), (A @ C.T)[pairs.rows, pairs.cols])
    A, C = rng.normal(size=(2, 5, D))
    np.testing.assert_allclose(pairs.col_dots(A, C), (A.T @ C)[pairs.rows, pairs.cols])
    theta = rng.normal(size=pairs.n_pairs)
    np.testing.assert_allclose(
        pairs.quadratic_forms(A, theta), np.einsum("ij,jk,ik->i", A, pairs.to_dense(theta), A)
    )


@pytest.mark.slow
def test_sm_certified_on_natural_patches_with_small_reg():
    # On 50,000 natural patches with reg=1e-3 the precision's entries span
    # five decades; the dual's line search used to stall on rounding at a
    # KKT residual of 1e-5 (ConvergenceWarning). The rank-one polish must
    # certify the optimum.
    from skdensity.datasets import extract_patches, load_natural_images

    # the reproduction's training patches (a stall case of the old solver)
    P = extract_patches(load_natural_images().images, (28, 28), 52000, random_state=0)[:50000]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sm = MaskedGaussianSM(reg=1e-3).fit(P)
    assert sm.kkt_residual_ <= 1e-6
    assert sm.min_eigenvalue_ >= sm.eps_ * (1 - 1e-9)
    assert sm.unconstrained_min_eigenvalue_ < 0  # the constraint is active here
