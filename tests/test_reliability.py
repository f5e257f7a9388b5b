"""Reliability: public functions check what they are given, no NaN from finite
input, noise models that cannot serve are refused, helpers speak the user's
terms, and threads give the sequential results."""

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from joblib import parallel_backend
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skdensity import (
    GaussianDensity,
    MaskedGaussianCNCE,
    MaskedGaussianMLE,
    MaskedGaussianNCE,
    MaskedGaussianSM,
    TransformedDensity,
    ZCAWhitener,
    covariance_selection,
    grid_mask,
    log_abs_det_jacobian,
    masked_score_matching,
)
from skdensity.datasets import extract_patches, load_natural_images

from .conftest import random_gmrf, sample_gmrf

SOLVERS = [covariance_selection, masked_score_matching]


def dense(a):
    return a.toarray() if sp.issparse(a) else a


@pytest.fixture(scope="module")
def gmrf_data():
    P, _ = random_gmrf((4, 4), 8, seed=1)
    return sample_gmrf(P, 400, seed=2)


@pytest.mark.parametrize("solve", SOLVERS, ids=lambda f: f.__name__)
def test_public_solvers_check_shapes_symmetry_and_diagonal(solve, gmrf_data):
    S = np.cov(gmrf_data.T, bias=True)
    with pytest.raises(ValueError, match=r"mask has shape \(9, 9\) but S has 16 features"):
        solve(S, grid_mask((3, 3)))
    lopsided = grid_mask((4, 4))
    lopsided[0, 10] = True
    with pytest.raises(ValueError, match=r"mask must be symmetric: entry \(0, 10\)"):
        solve(S, lopsided)
    no_diagonal = grid_mask((4, 4))
    no_diagonal[3, 3] = False
    with pytest.raises(ValueError, match="True diagonal"):
        solve(S, no_diagonal)
    skewed = S.copy()
    skewed[0, 1] += 1.0
    with pytest.raises(ValueError, match=r"S must be symmetric: S\[0, 1\]"):
        solve(skewed, grid_mask((4, 4)))
    with pytest.raises(ValueError, match="square"):
        solve(S[:, :15], grid_mask((4, 4)))
    bad = S.copy()
    bad[2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        solve(bad, grid_mask((4, 4)))


def test_covariance_selection_checks_the_start(gmrf_data):
    S = np.cov(gmrf_data.T, bias=True)
    with pytest.raises(ValueError, match=r"init must be a \(16, 16\) precision matrix"):
        covariance_selection(S, grid_mask((4, 4)), init=np.eye(9))


ESTIMATORS = [
    MaskedGaussianSM(),
    MaskedGaussianMLE(),
    MaskedGaussianNCE(noise_ratio=2, random_state=0, max_iter=50),
    MaskedGaussianCNCE(random_state=0, max_iter=50),
    GaussianDensity(),
    ZCAWhitener(),
    TransformedDensity(),
]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_score_samples_is_never_nan_for_finite_input(est, gmrf_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence of the capped NCE fits
        fitted = clone(est).fit(gmrf_data)
    X = np.vstack([gmrf_data[:3] * 1e154, gmrf_data[:1] * 1e200, gmrf_data[:2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no overflow warning either
        out = fitted.score_samples(X)
    assert not np.any(np.isnan(out))
    assert np.all(out[:4] == -np.inf) and np.all(np.isfinite(out[4:]))


@pytest.mark.parametrize(
    "kernel, message",
    [
        ("tophat", r"KernelDensity\(kernel='tophat'\) is zero beyond its bandwidth"),
        ("epanechnikov", r"KernelDensity\(kernel='epanechnikov'\) is zero beyond"),
        ("exponential", r"kernel='exponential'\).*cannot draw samples"),
    ],
)
def test_nce_refuses_noise_that_cannot_serve(kernel, message, gmrf_data):
    noise = KernelDensity(kernel=kernel, bandwidth=0.5).fit(gmrf_data)
    with pytest.raises(ValueError, match=message):
        MaskedGaussianNCE(noise=noise, noise_ratio=2, random_state=0).fit(gmrf_data)


@pytest.mark.parametrize(
    "patch_size, n_patches, message",
    [
        ((0, 5), 10, r"positive integers \(height, width\), got \(0, 5\)"),
        ((-3, 5), 10, r"positive integers \(height, width\), got \(-3, 5\)"),
        (5, 10, r"must be a pair \(height, width\), got 5"),
        ((8, 8), 10**9, r"n_patches=1000000000 is more than the \d+ patch positions"),
    ],
)
def test_extract_patches_errors_say_what_is_wrong(patch_size, n_patches, message):
    with pytest.raises(ValueError, match=message):
        extract_patches(load_natural_images().images, patch_size, n_patches, random_state=0)


def test_helper_messages_are_in_the_users_terms(gmrf_data):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="ZCAWhitener instance is not fitted"):
        log_abs_det_jacobian(ZCAWhitener(), gmrf_data)
    fitted = TransformedDensity().fit(gmrf_data)
    with pytest.raises(ValueError, match="n_samples must be a positive integer, got 0"):
        fitted.sample(0)


@pytest.mark.parametrize("Est", [MaskedGaussianSM, MaskedGaussianMLE])
def test_fits_and_scores_in_threads_equal_sequential_ones(Est):
    # Different masks and data per task, so that the shared caches are
    # filled, evicted and read concurrently.
    tasks = []
    for seed, (shape, conn) in enumerate([((6, 6), 8), ((5, 7), 4), ((6, 6), 4), ((4, 9), 8)] * 3):
        P, _ = random_gmrf(shape, conn, seed=seed)
        tasks.append((Est(image_shape=shape, connectivity=conn), sample_gmrf(P, 300, seed=seed)))

    def run(task):
        est, X = task
        fitted = clone(est).fit(X)
        return fitted.precision_.toarray(), fitted.score_samples(X)

    sequential = [run(task) for task in tasks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(run, tasks))
    # Equal to rounding: BLAS sums in another order when another thread holds
    # it to one thread.
    for (P1, s1), (P2, s2) in zip(sequential, threaded):
        np.testing.assert_allclose(P2, P1, rtol=1e-12, atol=1e-12 * np.abs(P1).max())
        np.testing.assert_allclose(s2, s1, rtol=1e-12)


def test_single_threaded_sections_overlap_across_threads():
    # BLAS's limit is process-wide. Thread A enters, then B; A leaves while
    # B is still inside: the limit must stay until B leaves too, and then be
    # what it was (not one thread for good).
    from threading import Event, Thread

    import skdensity.utils._threads as threads

    def blas_threads():
        info = threads._controller().info()
        return [lib["num_threads"] for lib in info if lib["user_api"] == "blas"]

    before = blas_threads()
    a_in, b_in, a_out = Event(), Event(), Event()
    seen = {}

    def a():
        with threads.single_threaded():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with threads.single_threaded():
            b_in.set()
            a_out.wait(5)
            seen["limited"] = threads._sections == 1 and threads._limiter is not None

    workers = [Thread(target=a), Thread(target=b)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert seen["limited"]
    assert threads._sections == 0 and threads._limiter is None
    assert blas_threads() == before
    assert blas_threads() == before


def test_grid_search_on_the_threading_backend(gmrf_data):
    grid = {"connectivity": [4, 8], "reg": [0.01, 0.1]}
    with parallel_backend("threading", n_jobs=2):
        threaded = GridSearchCV(MaskedGaussianSM(), grid, cv=3, n_jobs=2).fit(gmrf_data)
    sequential = GridSearchCV(MaskedGaussianSM(), grid, cv=3, n_jobs=1).fit(gmrf_data)
    np.testing.assert_array_equal(
        threaded.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )


SCALES = [1e-120, 1e-100, 1e-30, 1e30, 1e100, 1e120, 2.0**-330, 2.0**330]


@pytest.mark.parametrize(
    "est, rtol",
    [
        (MaskedGaussianSM(reg=0.0), 1e-6),
        (MaskedGaussianMLE(reg=0.0), 1e-6),
        (GaussianDensity(), 1e-9),
        (MaskedGaussianNCE(reg=0.0, noise_ratio=2, random_state=0), 1e-3),
        (MaskedGaussianCNCE(reg=0.0, random_state=0), 1e-3),
        (ZCAWhitener(), 1e-9),
    ],
    ids=lambda e: type(e).__name__ if not isinstance(e, float) else "",
)
def test_estimates_are_equivariant_under_scaling(est, rtol, gmrf_data):
    # Data a times larger: precision / a^2 (whitening / a), the same
    # log-likelihood up to -D log a, and the same certificate.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence or overflow warning at any scale
        reference = clone(est).fit(gmrf_data)
        expected = reference.score_samples(gmrf_data)
        for a in SCALES:
            scaled = clone(est).fit(a * gmrf_data)
            if hasattr(reference, "precision_"):
                np.testing.assert_allclose(
                    dense(scaled.precision_) * a**2,
                    dense(reference.precision_),
                    rtol=rtol,
                    atol=rtol * np.abs(reference.precision_).max(),
                )
            else:
                np.testing.assert_allclose(scaled.whitening_ * a, reference.whitening_, rtol=rtol)
            np.testing.assert_allclose(
                scaled.score_samples(a * gmrf_data) + 16 * np.log(a),
                expected,
                rtol=rtol,
                atol=rtol * np.abs(expected).max(),
            )


@pytest.mark.parametrize("a", [1e-160, 1e155, 1e160])
@pytest.mark.parametrize(
    "est",
    [
        MaskedGaussianSM(reg=0.0),
        MaskedGaussianMLE(reg=0.0),
        GaussianDensity(),
        MaskedGaussianNCE(reg=0.0),
        MaskedGaussianCNCE(reg=0.0),
        ZCAWhitener(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_beyond_float64s_reach_one_clear_error(est, a, gmrf_data):
    with pytest.raises(ValueError, match="Rescale the data"):
        clone(est).fit(a * gmrf_data)


@pytest.mark.parametrize("eps", [1e-300, 1e-12, 1e300])
@pytest.mark.parametrize(
    "Est", [MaskedGaussianSM, MaskedGaussianNCE, MaskedGaussianCNCE], ids=lambda E: E.__name__
)
def test_eps_outside_what_the_solvers_certify_is_refused(Est, eps, gmrf_data):
    with pytest.raises(ValueError, match=r"eps=.* times 1 / lambda_max\(S\)"):
        Est(eps=eps).fit(gmrf_data)
    with pytest.raises(ValueError, match=r"eps=.* times 1 / lambda_max\(S\)"):
        masked_score_matching(np.cov(gmrf_data.T), grid_mask((4, 4)), eps=eps)


@pytest.mark.parametrize("shape", ["isotropic", "score_matching"])
def test_cnce_noise_scale_below_rounding_is_refused(shape, gmrf_data):
    with pytest.raises(ValueError, match="noise_scale=1e-300 is too small"):
        MaskedGaussianCNCE(noise_shape=shape, noise_scale=1e-300).fit(gmrf_data)


def test_gaussian_on_rank_deficient_whitened_patches_is_a_clear_error():
    # Each patch's mean removed: rank one short, which rounding hides from
    # a plain Cholesky factorisation of the whitened covariance.
    P = extract_patches(load_natural_images().images, (12, 12), 3000, random_state=0)
    Z = ZCAWhitener(eps=0.01).fit_transform(P - P.mean(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="covariance is singular .* set reg > 0"):
        GaussianDensity().fit(Z)
    assert np.all(np.isfinite(GaussianDensity(reg=1e-3).fit(Z).score_samples(Z)))


def test_unconverged_warning_names_the_right_remedy():
    from sklearn.exceptions import ConvergenceWarning

    from skdensity.utils._validation import warn_unconverged

    # out of budget: more iterations help
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        warn_unconverged("Score matching", 2e-6, tol=1e-6, n_iter=50, max_iter=50)
    # stalled before the budget (rounding): a looser tol, not max_iter
    with pytest.warns(ConvergenceWarning, match=r"stalled before max_iter.*tol=2e-06") as record:
        warn_unconverged("Score matching", 1.01e-6, tol=1e-6, n_iter=293, max_iter=5000)
    assert "increase max_iter" not in str(record[0].message)


def test_solvers_out_of_budget_say_increase_max_iter():
    from sklearn.exceptions import ConvergenceWarning

    from skdensity import MaskedGaussianMLE, MaskedGaussianSM
    from skdensity.datasets import load_mnist

    X = load_mnist().data[::20]  # score matching's PD constraint is active on digits
    for est in (MaskedGaussianSM(reg=1e-3, max_iter=2), MaskedGaussianMLE(reg=1e-3, max_iter=1)):
        with pytest.warns(ConvergenceWarning, match="increase max_iter"):
            est.fit(X)
