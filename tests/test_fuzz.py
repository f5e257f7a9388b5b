"""Property-based tests: generated shapes, scales, constant and collinear
columns, masks and parameters for every public estimator and solver.

Asserted for every example: no NaN from finite input; no exception but the
library's own (a ``ValueError`` raised by skdensity or by scikit-learn's input
validation, never a message from inside numpy, scipy or LAPACK); a failed
refit leaves the estimator as it was; ``partial_fit`` agrees with ``fit``.
The number of examples is bounded so that the suite stays within a couple of
minutes (``SKDENSITY_FUZZ_EXAMPLES`` scales it).
"""

import os
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from skdensity import (
    DeepEnergyModel,
    DensityOutlierDetector,
    GaussianDensity,
    MaskedGaussianCNCE,
    MaskedGaussianMLE,
    MaskedGaussianNCE,
    MaskedGaussianSM,
    TransformedDensity,
    ZCAWhitener,
    check_mask,
    covariance_selection,
    grid_mask,
    masked_score_matching,
    zca_whitening,
)

EXAMPLES = int(os.environ.get("SKDENSITY_FUZZ_EXAMPLES", "60"))
PACKAGE = str(Path(__file__).resolve().parents[1] / "skdensity")
# Where scikit-learn raises for input that is the user's to fix (too few
# samples, NaN in X): its validation module, not its numerics.
SKLEARN_VALIDATION = ("sklearn/utils/validation.py", "sklearn/utils/_param_validation.py")


def fuzz_settings(factor=1.0):
    return settings(
        max_examples=max(1, int(EXAMPLES * factor)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,  # the same examples in every CI run
    )


@st.composite
def image_data(draw, min_samples=2, max_samples=60):
    """``(X, image_shape)``: Gaussian images at a scale between 1e-100 and
    1e100, some columns constant, some copies of others."""
    h = draw(st.integers(1, 5))
    w = draw(st.integers(2 if h == 1 else 1, 5))
    D = h * w
    n = draw(st.integers(min_samples, max_samples))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) @ rng.normal(size=(D, D)) * draw(st.floats(0.1, 10.0))
    X += rng.normal(size=D) * draw(st.sampled_from([0.0, 1.0, 100.0]))
    for j in draw(st.lists(st.integers(0, D - 1), max_size=3)):
        X[:, j] = draw(st.sampled_from([0.0, 1.0, -3.5]))  # constant columns
    for i, j in draw(st.lists(st.tuples(st.integers(0, D - 1), st.integers(0, D - 1)), max_size=2)):
        X[:, i] = X[:, j]  # collinear columns
    X *= 10.0 ** draw(st.integers(-100, 100))
    return X, (h, w)


def raised_by_the_library(exc):
    """A ValueError whose innermost frame is skdensity's own code or
    scikit-learn's input validation."""
    if not isinstance(exc, ValueError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1].filename if frames else ""
    return where.startswith(PACKAGE) or where.endswith(SKLEARN_VALIDATION)


def fit_or_library_error(est, X):
    """The fitted estimator, or None if it raised one of the library's errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence, separability, conditioning
        try:
            return est.fit(X)
        except Exception as exc:  # noqa: BLE001 - the point is to look at any exception
            assert raised_by_the_library(exc), "".join(traceback.format_exception(exc))
            return None


def check_scores(est, X):
    Y = np.vstack([X, 1e3 * X[:2], -X[:1]])
    out = est.score_samples(Y)
    assert out.shape == (len(Y),)
    assert not np.any(np.isnan(out)), out
    assert not np.isnan(est.score(X))


def dense(a):
    return a.toarray() if sp.issparse(a) else a


GAUSSIANS = {
    "sm": lambda shape, conn, reg: MaskedGaussianSM(image_shape=shape, connectivity=conn, reg=reg),
    "mle": lambda shape, conn, reg: MaskedGaussianMLE(
        image_shape=shape, connectivity=conn, reg=reg
    ),
    "gaussian": lambda shape, conn, reg: GaussianDensity(reg=reg),
}


@fuzz_settings()
@given(
    data=image_data(),
    kind=st.sampled_from(sorted(GAUSSIANS)),
    conn=st.sampled_from([4, 8]),
    reg=st.sampled_from([0.0, 1e-3, 1.0]),
    other=image_data(),
)
def test_gaussians(data, kind, conn, reg, other):
    X, shape = data
    est = fit_or_library_error(GAUSSIANS[kind](shape, conn, reg), X)
    if est is None:
        return
    check_scores(est, X)
    assert np.all(np.isfinite(dense(est.precision_)))
    samples = est.sample(3, random_state=0)
    assert samples.shape == (3, X.shape[1]) and not np.any(np.isnan(samples))
    # streaming the same data in two chunks gives the same model (when the
    # first chunk alone has a covariance to start from)
    chunked = clone(est)
    first, second = X[: max(2, len(X) // 2)], X[max(2, len(X) // 2) :]
    if fit_or_library_error(chunked, first) is not None and len(second):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chunked.partial_fit(second)
        scale = np.abs(est.precision_).max()
        np.testing.assert_allclose(
            dense(chunked.precision_), dense(est.precision_), rtol=1e-4, atol=1e-4 * scale
        )
    # a refit on other data either succeeds or leaves the estimator as it was
    Y, other_shape = other
    if kind != "gaussian":
        est.set_params(image_shape=other_shape)
    before = dict(vars(est))
    if fit_or_library_error(est, Y) is None:
        assert set(vars(est)) == set(before)
        assert all(vars(est)[key] is before[key] for key in before)
    else:
        check_scores(est, Y)


@fuzz_settings(0.4)
@given(
    data=image_data(min_samples=5, max_samples=40),
    cnce=st.booleans(),
    reg=st.sampled_from([0.0, 0.01]),
    eps=st.sampled_from(["auto", 1e-6, 0.1]),
)
def test_noise_contrastive(data, cnce, reg, eps):
    X, shape = data
    Est = MaskedGaussianCNCE if cnce else MaskedGaussianNCE
    kw = {} if cnce else {"noise_ratio": 2}
    est = Est(image_shape=shape, reg=reg, eps=eps, max_iter=40, random_state=0, **kw)
    est = fit_or_library_error(est, X)
    if est is not None:
        check_scores(est, X)
        assert np.all(np.isfinite(est.precision_.data)) and est.min_eigenvalue_ > 0


@fuzz_settings(0.6)
@given(
    data=image_data(),
    eps=st.sampled_from([0.0, 1e-6, 0.1, 1.0]),
    transformed=st.booleans(),
)
def test_whitening(data, eps, transformed):
    X, _ = data
    zca = ZCAWhitener(eps=eps)
    est = fit_or_library_error(
        TransformedDensity(zca, GaussianDensity()) if transformed else zca, X
    )
    if est is not None:
        check_scores(est, X)
        assert not np.any(np.isnan(est.sample(2, random_state=0)))


@pytest.mark.slow
@fuzz_settings(0.2)
@given(data=image_data(min_samples=10, max_samples=40), objective=st.sampled_from(["sm", "dsm"]))
def test_energy_model(data, objective):
    X, _ = data
    est = DeepEnergyModel(
        n_hidden=3,
        n_experts=3,
        max_epochs=2,
        objective=objective,
        n_ais_chains=5,
        n_ais_temperatures=5,
        random_state=0,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X)
    except FloatingPointError as exc:  # the energy model's documented failure
        assert "non-finite" in str(exc)
        return
    except ValueError as exc:
        assert raised_by_the_library(exc)
        return
    check_scores(est, X)


@fuzz_settings()
@given(
    data=image_data(),
    conn=st.sampled_from([4, 8]),
    reg=st.sampled_from([0.0, 1e-3]),
    solver=st.sampled_from(["sm", "mle"]),
    transpose_mask=st.booleans(),
)
def test_solvers(data, conn, reg, solver, transpose_mask):
    X, shape = data
    S = np.cov(X.T, bias=True).reshape(X.shape[1], X.shape[1]) + reg * np.eye(X.shape[1])
    mask = grid_mask(shape, conn)
    if transpose_mask:  # a mask for another image of as many pixels
        mask = grid_mask(shape[::-1], conn)
    solve = masked_score_matching if solver == "sm" else covariance_selection
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            precision, info = solve(S, mask)
        except Exception as exc:  # noqa: BLE001
            assert raised_by_the_library(exc), "".join(traceback.format_exception(exc))
            return
    assert np.all(np.isfinite(precision)) and np.all(
        precision[~check_mask(mask, len(S)).toarray()] == 0
    )
    assert np.isfinite(info.kkt_residual) and info.min_eigenvalue > 0
    try:
        W, Winv, lam, eps = zca_whitening(S, eps=0.1)
    except Exception as exc:  # noqa: BLE001
        assert raised_by_the_library(exc), "".join(traceback.format_exception(exc))
    else:
        assert np.all(np.isfinite(W)) and np.all(np.isfinite(Winv))


@fuzz_settings(0.5)
@given(data=image_data(min_samples=5), contamination=st.sampled_from(["auto", 0.01, 0.2, 0.5]))
def test_outlier_detector(data, contamination):
    X, _ = data
    est = fit_or_library_error(
        DensityOutlierDetector(
            GaussianDensity(reg=1e-3 * np.abs(X).max() ** 2 + 1e-300), contamination=contamination
        ),
        X,
    )
    if est is not None:
        check_scores(est, X)
        labels = est.predict(np.vstack([X, 1e3 * X[:2]]))
        assert set(np.unique(labels)) <= {-1, 1}
        assert not np.any(np.isnan(est.decision_function(X)))
