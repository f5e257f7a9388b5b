"""Noise-contrastive estimation of masked Gaussians: NCE and conditional NCE."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

from skdensity import (
    MaskedGaussianCNCE,
    MaskedGaussianMLE,
    MaskedGaussianNCE,
    MaskedGaussianSM,
    masked_score_matching,
)
from skdensity.datasets import make_gmrf
from skdensity.exceptions import SeparableNoiseWarning
from skdensity.gaussian import cnce_loss, metric_score_matching, nce_loss
from skdensity.gaussian._nce import start_and_preconditioner
from skdensity.gaussian._pixel_contrasts import PixelContrasts
from skdensity.gaussian._quadratic_features import QuadraticFeatures, quadratic_features
from skdensity.gaussian._score_matching import resolve_eps, score_matching_hessian
from skdensity.linalg import MaskPairs, as_pairs, minimize_pd
from skdensity.masks import grid_mask

from .conftest import random_gmrf, sample_gmrf


def rel_err(est, P):
    return np.linalg.norm(est.precision_.toarray() - P) / np.linalg.norm(P)


def test_loss_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    gd, gn = rng.normal(size=7) * 3, rng.normal(size=20) * 3
    loss, dd, dn = nce_loss(gd, gn, 20 / 7)
    h = 1e-6
    for i in range(7):
        e = np.zeros(7)
        e[i] = h
        fd = (nce_loss(gd + e, gn, 20 / 7)[0] - nce_loss(gd - e, gn, 20 / 7)[0]) / (2 * h)
        assert np.isclose(dd[i], fd, rtol=1e-5, atol=1e-9)
    for i in range(20):
        e = np.zeros(20)
        e[i] = h
        fd = (nce_loss(gd, gn + e, 20 / 7)[0] - nce_loss(gd, gn - e, 20 / 7)[0]) / (2 * h)
        assert np.isclose(dn[i], fd, rtol=1e-5, atol=1e-9)
    g = rng.normal(size=9) * 3
    _, d = cnce_loss(g)
    fd = [
        (cnce_loss(g + h * np.eye(9)[i])[0] - cnce_loss(g - h * np.eye(9)[i])[0]) / (2 * h)
        for i in range(9)
    ]
    np.testing.assert_allclose(d, fd, rtol=1e-5, atol=1e-9)


def test_losses_stay_finite_at_extreme_log_ratios():
    g = np.array([-1e5, -50.0, 0.0, 50.0, 1e5])
    loss, dd, dn = nce_loss(g, g, 10)
    assert np.isfinite(loss) and np.all(np.isfinite(dd)) and np.all(np.isfinite(dn))
    assert np.isclose(
        loss,
        (1e5 + 50 + np.log(2) + 0 + 0) / 5 + 10 * (0 + 0 + np.log(2) + 50 + 1e5) / 5,
        rtol=1e-12,
    )
    assert np.all(np.isfinite(cnce_loss(g)[1]))


def test_quadratic_features_are_the_log_density():
    rng = np.random.default_rng(1)
    P, mask = random_gmrf((3, 4), 8)
    pairs = MaskPairs(mask)
    U = rng.normal(size=(6, 12))
    theta = pairs.from_dense(P)
    np.testing.assert_allclose(
        quadratic_features(pairs, U) @ theta, -0.5 * np.einsum("ij,jk,ik->i", U, P, U)
    )


def _naive_features(pairs, U):
    return -0.5 * pairs.weights * U[:, pairs.rows] * U[:, pairs.cols]


@pytest.mark.parametrize("block", [1, 700, 8192])
def test_quadratic_features_blocks_centre_and_shift(block):
    # Built block by block in two threads (uneven split, remainder block):
    # the same matrix as the textbook products, centred and shifted.
    rng = np.random.default_rng(3)
    pairs = MaskPairs(grid_mask((4, 5), 8))
    U = rng.normal(size=(3001, 20)) if block > 1 else rng.normal(size=(7, 20))
    direction, centre = rng.normal(size=U.shape), rng.normal(size=20)
    got = quadratic_features(pairs, U, direction, 0.3, centre, block=block)
    expected = _naive_features(pairs, U - centre) - _naive_features(
        pairs, U - centre + 0.3 * direction
    )
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(
        quadratic_features(pairs, U, block=block), _naive_features(pairs, U), rtol=1e-13, atol=1e-13
    )


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("shifted", [False, True])
def test_feature_operator_recomputed_equals_stored(graph, shifted):
    # Recomputing the design matrix in chunks (memory of the data only) must
    # give the stored matrix's products: along pixel offsets for grid masks,
    # by row blocks for any other graph.
    rng = np.random.default_rng(0)
    if graph:
        mask = rng.random((20, 20)) < 0.2
        mask = mask | mask.T | np.eye(20, dtype=bool)
    else:
        mask = grid_mask((5, 6), 8)
    pairs = MaskPairs(mask)
    U = rng.normal(size=(3001, pairs.n_features))
    centre = rng.normal(size=pairs.n_features)
    direction = rng.normal(size=U.shape) if shifted else None
    theta, d = rng.normal(size=pairs.n_pairs), rng.normal(size=len(U))
    stored = QuadraticFeatures(pairs, U, direction, 0.3, centre=centre)
    streamed = QuadraticFeatures(pairs, U, direction, 0.3, centre=centre, max_bytes=0, chunk=500)
    assert stored.stored and not streamed.stored
    Phi = _naive_features(pairs, U - centre)
    if shifted:
        Phi = Phi - _naive_features(pairs, U - centre + 0.3 * direction)
    np.testing.assert_allclose(stored @ theta, Phi @ theta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stored.T @ d, Phi.T @ d, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(streamed @ theta, Phi @ theta, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(streamed.T @ d, Phi.T @ d, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("Est", [MaskedGaussianNCE, MaskedGaussianCNCE])
def test_precompute_false_gives_the_same_fit(Est):
    P, _ = random_gmrf((5, 5), seed=1)
    X = sample_gmrf(P, 600, seed=2)
    kw = dict(random_state=0, max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if Est is MaskedGaussianCNCE:  # only copies that move every pixel have features
            kw["noise_support"] = "image"
        a = Est(precompute=True, **kw).fit(X)
        b = Est(precompute=False, **kw).fit(X)
    np.testing.assert_allclose(b.precision_.toarray(), a.precision_.toarray(), rtol=1e-7, atol=1e-9)
    assert b.n_iter_ == a.n_iter_


def test_projected_quasi_newton_agrees_with_score_matching_dual():
    # The shared PD-constrained minimiser reproduces the specialised SM solver.
    rng = np.random.default_rng(0)
    A = rng.normal(size=(25, 25))
    S = A @ A.T / 25 + 0.05 * np.eye(25)
    mask = grid_mask((5, 5), 8)
    pairs = MaskPairs(mask)
    P_dual, info = masked_score_matching(S, mask, eps=0.6, tol=1e-10)
    assert info.unconstrained_min_eigenvalue < 0.6  # the constraint is active
    H = score_matching_hessian(S, pairs).toarray()
    g = pairs.is_diag.astype(float)
    x0 = pairs.from_dense(P_dual + 0.6 * np.eye(25))
    result = minimize_pd(
        lambda t: (0.5 * t @ H @ t - g @ t, H @ t - g), x0, pairs, eps=0.6, tol=1e-7
    )
    x = result.x
    assert result.converged and result.kkt_residual <= 1e-7
    assert result.min_eigenvalue >= 0.6 * (1 - 1e-12)
    J = lambda P: 0.5 * np.trace(P @ S @ P) - np.trace(P)  # noqa: E731
    assert abs(J(pairs.to_dense(x)) - J(P_dual)) < 1e-8 * abs(J(P_dual))
    np.testing.assert_allclose(pairs.to_dense(x), P_dual, atol=1e-6 * np.abs(P_dual).max())


def test_nce_error_falls_with_n_and_approaches_mle_with_nu():
    P, _ = random_gmrf((4, 4), 8, seed=0)
    errs = {}
    for n in (500, 5000):
        X = sample_gmrf(P, n, seed=n)
        errs["mle", n] = rel_err(MaskedGaussianMLE(reg=0.0).fit(X), P)
        for nu in (1, 10):
            nce = MaskedGaussianNCE(noise_ratio=nu, reg=0.0, random_state=0).fit(X)
            errs[nu, n] = rel_err(nce, P)
            assert nce.min_eigenvalue_ >= nce.eps_ and nce.accuracy_ < 0.99
    for key in (1, 10, "mle"):
        assert errs[key, 5000] < 0.6 * errs[key, 500], errs
    # more noise -> closer to maximum likelihood's efficiency
    assert errs[10, 5000] < errs[1, 5000]
    assert errs[10, 5000] < 1.3 * errs["mle", 5000], errs


def test_nce_learned_normaliser_is_exact_when_model_is_right():
    P, _ = random_gmrf((3, 3), 8, seed=1)
    X = sample_gmrf(P, 20000, seed=3)
    nce = MaskedGaussianNCE(noise_ratio=10, reg=0.0, random_state=0).fit(X)
    assert abs(nce.normalizer_gap_) < 0.02
    # every step of the projected quasi-Newton solver lowers the NCE loss
    assert np.all(np.diff(nce.loss_curve_) <= 1e-12 * abs(nce.loss_curve_[0]))
    assert nce.loss_curve_[-1] < nce.loss_curve_[0]


@pytest.mark.parametrize("support", ["image", "pixel"])
def test_cnce_tends_to_score_matching(support):
    # Isotropic noise: as the noise scale shrinks (and with many draws, whose
    # Monte Carlo error is the remaining gap) cNCE becomes score matching.
    P, _ = random_gmrf((4, 4), 8, seed=2)
    X = sample_gmrf(P, 4000, seed=5)
    sm = MaskedGaussianSM(reg=0.0).fit(X)
    assert sm.n_active_ == 0  # unconstrained SM is PD here

    def diff(scale, draws):
        cnce = MaskedGaussianCNCE(
            reg=0.0,
            noise_support=support,
            noise_shape="isotropic",
            noise_scale=scale,
            n_noise_draws=draws,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SeparableNoiseWarning)  # at scale 1
            cnce.fit(X)
        return sp.linalg.norm(cnce.precision_ - sm.precision_) / sp.linalg.norm(sm.precision_)

    small_many, small_few = diff(0.003, 50), diff(0.003, 4)
    assert small_many < 0.6 * small_few and small_many < 0.025
    if support == "image":  # large copies of whole images are nearly separable
        assert small_many < 0.6 * diff(1.0, 50)


@pytest.mark.parametrize("shape", ["score_matching", "covariance", "isotropic"])
def test_cnce_small_noise_limit_is_score_matching_in_the_noise_metric(shape):
    # With noise N(0, eps^2 A) on whole images, cNCE tends to
    # argmin tr(L A L S)/2 - tr(A L) as eps -> 0. The model is misspecified
    # here (non-Gaussian data, 8-connected before the squaring, a 4-connected
    # fit), so the three metrics' limits differ (by 2-4%), and each fit must
    # land on its own (measured: 1.2% away, the rest being the draws'
    # sampling noise). Single-pixel copies have diagonal metrics, whose
    # limits differ by less than that noise here (0.3%).
    P, _ = random_gmrf((4, 4), 8, seed=2)
    X = sample_gmrf(P, 8000, seed=5)
    X += 0.5 * X**2
    mask = grid_mask((4, 4), 4)
    est = MaskedGaussianCNCE(
        reg=0.0,
        connectivity=4,
        noise_support="image",
        noise_shape=shape,
        noise_scale=0.003,
        n_noise_draws=50,
        random_state=0,
    ).fit(X)
    S = np.cov(X.T, bias=True)  # the full covariance (reg=0)
    eps = resolve_eps("auto", S)
    start, _ = start_and_preconditioner(
        S=S, pairs=as_pairs(mask), eps=eps
    )  # the estimator's SM start
    metrics = {
        "score_matching": np.linalg.inv(as_pairs(mask).to_dense(start)),
        "covariance": S,
        "isotropic": np.eye(16),
    }
    limits = {k: metric_score_matching(S, A, mask, eps=eps)[0] for k, A in metrics.items()}

    def dist(Q):
        return np.linalg.norm(est.precision_.toarray() - Q) / np.linalg.norm(Q)

    own = dist(limits[shape])
    others = min(dist(Q) for k, Q in limits.items() if k != shape)
    assert own < 0.016 and own < 0.7 * others, (own, others)


@pytest.mark.parametrize(
    "support, shape",
    [
        ("image", "score_matching"),
        ("pixel", "score_matching"),
        ("pixel", "covariance"),
        ("pixel", "isotropic"),
    ],
)
def test_cnce_recovers_gmrf(support, shape):
    P, _ = random_gmrf((4, 4), 8, seed=2)
    errs = []
    for n in (500, 5000):
        X = sample_gmrf(P, n, seed=n)
        cnce = MaskedGaussianCNCE(
            reg=0.0, noise_support=support, noise_shape=shape, random_state=0
        ).fit(X)
        assert 0 < cnce.accuracy_ < 0.99 and cnce.min_eigenvalue_ >= cnce.eps_
        errs.append(rel_err(cnce, P))
    assert errs[1] < 0.6 * errs[0] and errs[1] < 0.08, errs


def test_single_pixel_contrasts_are_the_pairs_they_stand_for():
    # Every (sample, pixel, +-step) pair spelled out: loss, accuracy and the
    # gradient (by central differences) of the loss over all of them.
    X, P = make_gmrf(9, (4, 5), random_state=0)
    pairs = MaskPairs(grid_mask((4, 5), 8))
    theta = pairs.from_dense(sp.csr_array(P))
    rng = np.random.default_rng(1)
    steps = [0.7 * rng.standard_normal(X.shape) for _ in range(2)]
    n, D = X.shape

    def spelled_out(theta):
        Lam = pairs.to_dense(theta)
        log_p = lambda u: -0.5 * u @ Lam @ u  # noqa: E731
        G = []
        for t in steps:
            for sign in (1, -1):
                for i, p in np.ndindex(n, D):
                    y = X[i].copy()
                    y[p] += sign * t[i, p]
                    G.append(log_p(X[i]) - log_p(y))
        return np.logaddexp(0, -np.array(G)).mean(), np.mean(np.array(G) > 0)

    value = PixelContrasts(pairs, X, steps, block=4)(theta)
    loss, accuracy = spelled_out(theta)
    assert value.loss == pytest.approx(loss, rel=1e-12) and value.accuracy == accuracy
    h, unit = 1e-6, np.eye(theta.size)
    numeric = [
        (spelled_out(theta + h * unit[k])[0] - spelled_out(theta - h * unit[k])[0]) / (2 * h)
        for k in range(0, theta.size, 5)
    ]
    np.testing.assert_allclose(value.gradient[::5], numeric, rtol=1e-5, atol=1e-9)


def test_cnce_supports_at_a_size_where_copies_of_whole_images_are_too_few():
    # 24 x 24 pixels, 300 images: 2,800 free entries against 600 copies per
    # draw when a copy moves every pixel; single-pixel copies are 576 times
    # as many for the same work, and their estimate is near score matching's.
    X, P = make_gmrf(300, (24, 24), random_state=0)
    P = sp.csr_array(P)

    def error(est):
        return sp.linalg.norm(est.precision_ - P) / sp.linalg.norm(P)

    sm = error(MaskedGaussianSM(reg=0).fit(X))
    pixel = error(MaskedGaussianCNCE(reg=0, random_state=0).fit(X))
    image = MaskedGaussianCNCE(reg=0, noise_support="image", n_noise_draws=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it may not converge: that is the point
        image = error(image.set_params(max_iter=50).fit(X))
    assert pixel < 1.5 * sm and pixel < 0.5 * image, (sm, pixel, image)


@pytest.mark.parametrize("scale", [1e-3, 1e3])
@pytest.mark.parametrize("Est", [MaskedGaussianNCE, MaskedGaussianCNCE])
def test_never_nan_at_extreme_scales(Est, scale):
    P, _ = random_gmrf((3, 3), 8, seed=4)
    X = sample_gmrf(P, 1000) * scale
    est = Est(reg=0.0, random_state=0).fit(X)
    s = est.score_samples(X)
    assert np.all(np.isfinite(s)) and est.min_eigenvalue_ > 0
    # log-likelihoods shift by exactly -D log(scale) relative to unit scale
    ref = Est(reg=0.0, random_state=0).fit(X / scale)
    assert abs(est.score(X) - (ref.score(X / scale) - 9 * np.log(scale))) < 0.05


@pytest.mark.parametrize("Est", [MaskedGaussianNCE, MaskedGaussianCNCE])
def test_constant_pixels(Est):
    # reg smooths the data the objectives see, so pixels that never change
    # are neither separable nor unbounded.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 9))
    X[:, [0, 4]] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = Est(random_state=0).fit(X)
    assert np.all(np.isfinite(est.score_samples(X))) and est.min_eigenvalue_ >= est.eps_ * (
        1 - 1e-9
    )


def test_separable_noise_warns_stops_and_stays_valid():
    # Noise 30 times wider than the data: a positive definite quadratic form
    # separates them perfectly, the loss heads to zero and Lambda to infinity.
    from skdensity import GaussianDensity

    X = np.random.default_rng(0).normal(size=(300, 9))
    wide = GaussianDensity().fit(30 * X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nce = MaskedGaussianNCE(noise=wide, noise_ratio=1, random_state=0).fit(X)
    # One warning, the one that says why: no ConvergenceWarning advising
    # more iterations for a loss that has no minimum.
    assert [type(w.message) for w in caught] == [SeparableNoiseWarning]
    assert "separable" in str(caught[0].message)
    assert nce.accuracy_ >= 0.99 and nce.n_iter_ < 3000
    assert nce.min_eigenvalue_ >= nce.eps_ * (1 - 1e-9)
    assert np.all(np.isfinite(nce.score_samples(X)))


def test_user_noise_estimators():
    P, _ = random_gmrf((3, 3), 8, seed=6)
    X = sample_gmrf(P, 2000)
    gm = GaussianMixture(2, random_state=0).fit(X)
    kde = KernelDensity(bandwidth=0.5).fit(X)
    sm = MaskedGaussianSM().fit(X)
    for noise in (gm, kde, sm):
        nce = MaskedGaussianNCE(noise=noise, noise_ratio=2, random_state=0).fit(X)
        assert nce.noise_ is noise and np.all(np.isfinite(nce.score_samples(X)))
    with pytest.raises(ValueError, match="not fitted"):
        MaskedGaussianNCE(noise=GaussianMixture(2)).fit(X)
    with pytest.raises(ValueError, match="fitted on 4 features but X has 9"):
        MaskedGaussianNCE(noise=GaussianMixture(1).fit(X[:, :4])).fit(X)
    with pytest.raises(ValueError, match="full support"):
        MaskedGaussianNCE(noise=KernelDensity(kernel="tophat", bandwidth=0.01).fit(X[:5])).fit(X)


@pytest.mark.parametrize("Est", [MaskedGaussianNCE, MaskedGaussianCNCE])
def test_reproducible_persistent_and_no_partial_fit(Est):
    P, _ = random_gmrf((3, 3), 8, seed=7)
    X = sample_gmrf(P, 500)
    a = Est(random_state=3).fit(X)
    P = a.precision_.toarray()
    np.testing.assert_array_equal(P, Est(random_state=3).fit(X).precision_.toarray())
    assert not np.array_equal(P, Est(random_state=4).fit(X).precision_.toarray())
    for b in (pickle.loads(pickle.dumps(a)), clone(a).fit(X)):
        np.testing.assert_array_equal(b.score_samples(X), a.score_samples(X))
    assert not hasattr(a, "partial_fit")  # needs the samples, not just moments
    with pytest.raises(ValueError, match="NaN"):
        Est().fit(np.where(X > 2, np.nan, X))
    with pytest.raises(ValueError, match="9 features"):
        a.score_samples(X[:, :3])


def test_projected_quasi_newton_recovers_eigenvalue_clipping():
    # With a full mask and f = ||Lambda - T||_F^2 / 2 the constrained optimum
    # is known in closed form: T with its eigenvalues clipped at eps. Three
    # of them are below eps here, so the multiplier has rank three.
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    T = (Q * np.array([-2.0, -0.5, 0.1, 1.0, 2.0, 3.0])) @ Q.T
    pairs = MaskPairs(np.ones((6, 6), dtype=bool))
    target = pairs.from_dense(T)

    def fg(x):
        r = x - target
        return 0.5 * np.sum(pairs.weights * r * r), pairs.weights * r

    info = minimize_pd(fg, pairs.from_dense(10.0 * np.eye(6)), pairs, eps=0.5, tol=1e-7)
    x = info.x
    expected = (Q * np.maximum([-2.0, -0.5, 0.1, 1.0, 2.0, 3.0], 0.5)) @ Q.T
    assert info.converged and info.dual_factor.shape[1] == 3
    np.testing.assert_allclose(pairs.to_dense(x), expected, atol=1e-6)
