"""Novelty detection with a density (scikit-learn's outlier API) and
likelihoods in bits per dimension."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdensity import (
    DensityOutlierDetector,
    GaussianDensity,
    MaskedGaussianSM,
    bits_per_dimension,
)
from skdensity.datasets import extract_patches, load_mnist, load_natural_images


@pytest.fixture(scope="module")
def inliers_and_outliers():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 5))
    inliers = rng.normal(size=(600, 5)) @ A
    outliers = rng.normal(size=(60, 5)) @ A + 4.0 * rng.normal(size=(60, 5))
    return inliers, outliers


def test_flags_what_the_density_finds_unlikely(inliers_and_outliers):
    X, Y = inliers_and_outliers
    train, test = X[:400], X[400:]
    detector = DensityOutlierDetector().fit(train)
    decision = detector.decision_function(np.vstack([test, Y]))
    truth = np.r_[np.ones(len(test)), -np.ones(len(Y))]
    assert roc_auc_score(truth, decision) > 0.9
    np.testing.assert_array_equal(
        detector.predict(np.vstack([test, Y])), np.where(decision < 0, -1, 1)
    )
    assert np.mean(detector.predict(Y) == -1) > 0.6 and np.mean(detector.predict(test) == 1) > 0.9
    # the score is the density's log-likelihood, the threshold Tukey's fence
    np.testing.assert_allclose(detector.score_samples(test), detector.density_.score_samples(test))
    s = detector.density_.score_samples(train)
    q1, q3 = np.percentile(s, [25, 75])
    assert detector.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1))


@pytest.mark.parametrize("contamination", [0.01, 0.1, 0.5])
def test_contamination_is_the_share_flagged_in_training(contamination, inliers_and_outliers):
    X, _ = inliers_and_outliers
    labels = DensityOutlierDetector(contamination=contamination).fit_predict(X)
    assert abs(np.mean(labels == -1) - contamination) <= 1.0 / len(X) + 1e-12


def test_reference_density_gives_the_likelihood_ratio(inliers_and_outliers):
    X, Y = inliers_and_outliers
    reference = GaussianDensity().fit(np.vstack([X, Y]))  # a broader background
    detector = DensityOutlierDetector(reference=reference).fit(X)
    np.testing.assert_allclose(
        detector.score_samples(Y),
        detector.density_.score_samples(Y) - reference.score_samples(Y),
    )
    with pytest.raises(ValueError, match="reference density GaussianDensity is not fitted"):
        DensityOutlierDetector(reference=GaussianDensity()).fit(X)
    with pytest.raises(ValueError, match="fitted on 3 features but X has 5"):
        DensityOutlierDetector(reference=GaussianDensity().fit(X[:, :3])).fit(X)


@pytest.mark.parametrize(
    "density",
    [KernelDensity(bandwidth=0.5), GaussianMixture(3, random_state=0), MaskedGaussianSM()],
)
def test_any_density_in_a_pipeline(density, inliers_and_outliers):
    X, Y = inliers_and_outliers
    pipe = make_pipeline(StandardScaler(), DensityOutlierDetector(density, contamination=0.05))
    pipe.fit(X)
    assert (
        roc_auc_score(
            np.r_[np.ones(len(X)), -np.ones(len(Y))], pipe.decision_function(np.vstack([X, Y]))
        )
        > 0.85
    )
    assert set(np.unique(pipe.predict(Y))) <= {-1, 1}


def test_grid_search_tunes_the_density_by_held_out_likelihood(inliers_and_outliers):
    X, _ = inliers_and_outliers
    grid = {"density__bandwidth": [0.1, 0.5, 1.0, 3.0]}
    search = GridSearchCV(DensityOutlierDetector(KernelDensity()), grid, cv=3).fit(X)
    train, test = next(KFold(3).split(X))
    manual = KernelDensity(bandwidth=grid["density__bandwidth"][0]).fit(X[train]).score(X[test])
    assert search.cv_results_["split0_test_score"][0] == pytest.approx(manual / len(test))
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(scores))]


def test_digits_against_natural_patches():
    digits = load_mnist().data[:3000]
    patches = extract_patches(load_natural_images().images, (28, 28), 500, random_state=0)
    detector = DensityOutlierDetector(MaskedGaussianSM()).fit(digits[:2500])
    decision = detector.decision_function(np.vstack([digits[2500:], patches]))
    truth = np.r_[np.ones(500), -np.ones(500)]
    # well separated, not perfectly: smooth patches are likely under a
    # Gaussian of digits too (the known weakness of raw likelihoods)
    assert roc_auc_score(truth, decision) > 0.9


def test_bits_per_dimension():
    # a uniform density on [0, 1]^D: 8 bits per dimension for 256 levels
    assert bits_per_dimension(0.0, 784) == 8.0
    assert bits_per_dimension(0.0, 10, n_levels=2) == 1.0
    # levels spread over [0, 255] instead of [0, 1]: the density is 255^-D smaller
    D = 16
    assert bits_per_dimension(-D * np.log(255.0), D, data_range=255.0) == pytest.approx(
        bits_per_dimension(0.0, D, data_range=1.0)
    )
    # uniform 4-level data, dequantised: the discrete entropy is 2 bits, and a
    # Gaussian of the (uniform) dequantised data pays its cross-entropy to a
    # uniform on top, log2(2 pi e / 12) / 2 bits
    rng = np.random.default_rng(0)
    X = (rng.integers(0, 4, size=(20000, 3)) + rng.random((20000, 3))) / 4
    bits = bits_per_dimension(GaussianDensity().fit(X).score(X), 3, n_levels=4)
    assert bits == pytest.approx(2.0 + 0.5 * np.log2(2 * np.pi * np.e / 12), abs=0.01)
    np.testing.assert_allclose(
        bits_per_dimension(np.array([0.0, -np.log(2)]), 1, n_levels=2), [1.0, 2.0]
    )
    for bad in (
        dict(n_dims=0),
        dict(n_dims=2.5),
        dict(n_dims=3, n_levels=1),
        dict(n_dims=3, data_range=0.0),
    ):
        with pytest.raises(ValueError):
            bits_per_dimension(0.0, **bad)
    with pytest.raises(ValueError, match="NaN"):
        bits_per_dimension(np.nan, 3)


def test_mean_log_likelihood_scorer_puts_densities_on_one_scale():
    from sklearn.covariance import LedoitWolf
    from sklearn.neighbors import KernelDensity

    from skdensity import mean_log_likelihood

    X = np.random.default_rng(0).normal(size=(60, 3))
    kde = KernelDensity(bandwidth=0.5).fit(X)
    # KernelDensity.score is a sum; the scorer is the mean over rows
    assert mean_log_likelihood(kde, X) == pytest.approx(kde.score(X) / len(X))
    lw = LedoitWolf().fit(X)  # no score_samples: its score is already a mean
    assert mean_log_likelihood(lw, X) == pytest.approx(lw.score(X))
    g = GaussianDensity().fit(X)
    assert mean_log_likelihood(g, X) == pytest.approx(g.score(X))
    with pytest.raises(TypeError, match="neither score_samples nor score"):
        mean_log_likelihood(object(), X)


def test_mean_log_likelihood_refuses_nan_scores():
    from skdensity import mean_log_likelihood

    class NaNDensity:
        def score_samples(self, X):
            return np.full(len(X), np.nan)

    with pytest.raises(ValueError, match="returned NaN"):
        mean_log_likelihood(NaNDensity(), np.zeros((3, 2)))
