"""scikit-learn conformance of every public estimator: scikit-learn's common
checks, model selection, persistence, bad input."""

import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

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
)

ESTIMATORS = [MaskedGaussianSM(), MaskedGaussianMLE()]

# Every public estimator, with settings that keep scikit-learn's checks quick.
ALL_ESTIMATORS = [
    MaskedGaussianSM(),
    MaskedGaussianMLE(),
    MaskedGaussianNCE(noise_ratio=3, random_state=0),
    MaskedGaussianCNCE(random_state=0),
    GaussianDensity(),
    ZCAWhitener(),
    TransformedDensity(),
    TransformedDensity(ZCAWhitener(), MaskedGaussianMLE()),
    DensityOutlierDetector(),
    DensityOutlierDetector(MaskedGaussianSM(), contamination=0.1),
    DeepEnergyModel(
        n_hidden=4,
        n_experts=4,
        max_epochs=2,
        batch_size=20,
        n_ais_chains=20,
        n_ais_temperatures=20,
        random_state=0,
    ),
    DeepEnergyModel(  # the recipe for natural images
        n_hidden=1,
        n_experts=2,
        first_layer="orthogonal",
        nonlinearity="logcosh",
        nonnegative_weights=True,
        n_components=1,
        max_epochs=2,
        batch_size=20,
        n_ais_chains=20,
        n_ais_temperatures=20,
        random_state=0,
    ),
]


def test_every_public_estimator_is_checked():
    from sklearn.base import BaseEstimator

    import skdensity

    public = {
        name
        for name in skdensity.__all__
        if isinstance(getattr(skdensity, name), type)
        and issubclass(getattr(skdensity, name), BaseEstimator)
    }
    assert public == {type(est).__name__ for est in ALL_ESTIMATORS}


@parametrize_with_checks(ALL_ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_grid_search_selects_by_heldout_likelihood():
    from skdensity.datasets import load_mnist

    X = load_mnist().data
    X = X[np.random.default_rng(0).permutation(len(X))[:2000]]
    grid = {"connectivity": [4, 8], "reg": [0.01, 0.05]}
    search = GridSearchCV(MaskedGaussianSM(), grid, cv=3).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(scores))]
    # the test score is the held-out mean log-likelihood, computed by hand here
    p = search.cv_results_["params"][0]
    train, test = next(KFold(3).split(X))  # what cv=3 means for a density estimator
    manual = MaskedGaussianSM(**p).fit(X[train]).score(X[test])
    assert np.isclose(search.cv_results_["split0_test_score"][0], manual)
    # 8 neighbours explain digits better than 4
    assert search.best_params_["connectivity"] == 8


@pytest.mark.slow
def test_cross_val_score_parallel():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16))
    s1 = cross_val_score(MaskedGaussianMLE(), X, cv=3, n_jobs=2)
    s2 = cross_val_score(MaskedGaussianMLE(), X, cv=3, n_jobs=1)
    np.testing.assert_allclose(s1, s2)
    assert np.all(np.isfinite(s1))


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_persistence_round_trips(est, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 9))
    fitted = clone(est).fit(X)
    ref = fitted.score_samples(X)
    pickled = pickle.loads(pickle.dumps(fitted))
    joblib.dump(fitted, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    for other in (pickled, loaded, clone(est).fit(X)):
        np.testing.assert_array_equal(other.score_samples(X), ref)
    np.testing.assert_array_equal(
        fitted.sample(5, random_state=3), loaded.sample(5, random_state=3)
    )


@pytest.mark.parametrize("Est", [MaskedGaussianSM, MaskedGaussianMLE])
class TestBadInput:
    X = np.random.default_rng(0).normal(size=(50, 9))

    def test_nan_inf(self, Est):
        for bad in (np.nan, np.inf):
            X = self.X.copy()
            X[3, 2] = bad
            with pytest.raises(ValueError, match="NaN|infinity"):
                Est().fit(X)

    def test_empty_and_one_sample(self, Est):
        with pytest.raises(ValueError, match="0 sample"):
            Est().fit(np.empty((0, 9)))
        with pytest.raises(ValueError, match="1 sample"):
            Est().fit(self.X[:1])

    def test_one_dimensional_array(self, Est):
        with pytest.raises(ValueError, match="2D array"):
            Est().fit(self.X[:, 0])

    def test_wrong_width_at_score_time(self, Est):
        est = Est().fit(self.X)
        with pytest.raises(ValueError, match="9 features"):
            est.score_samples(self.X[:, :4])

    def test_image_shape_mismatch(self, Est):
        with pytest.raises(ValueError, match="image_shape"):
            Est(image_shape=(2, 2)).fit(self.X)

    def test_bad_masks(self, Est):
        asym = np.eye(9, dtype=bool)
        asym[0, 1] = True
        with pytest.raises(ValueError, match="symmetric"):
            Est(mask=asym).fit(self.X)
        with pytest.raises(ValueError, match="9 features"):
            Est(mask=np.eye(4, dtype=bool)).fit(self.X)
        nodiag = np.ones((9, 9), dtype=bool)
        np.fill_diagonal(nodiag, False)
        with pytest.raises(ValueError, match="diagonal"):
            Est(mask=nodiag).fit(self.X)

    def test_sample_bad_n(self, Est):
        est = Est().fit(self.X)
        for n in (0, -1, 2.5):
            with pytest.raises(ValueError, match="n_samples"):
                est.sample(n)
        with pytest.raises(ValueError, match="method"):
            est.sample(2, method="magic")

    def test_singular_without_reg(self, Est):
        X = self.X.copy()
        X[:, 4] = 1.0  # constant pixel: singular covariance
        with pytest.raises(ValueError, match="reg > 0"):
            Est(reg=0.0).fit(X)
        assert np.isfinite(Est().fit(X).score(X))  # the default floor copes

    def test_input_not_modified(self, Est):
        X = self.X.copy()
        est = Est().fit(X)
        est.partial_fit(X)
        est.score_samples(X)
        np.testing.assert_array_equal(X, self.X)

    def test_overflow_is_an_error_not_nan(self, Est):
        with pytest.raises(ValueError, match="not finite|Rescale"):
            Est().fit(self.X * 1e200)


@pytest.mark.slow
def test_import_does_not_import_tensorflow():
    code = "import sys, skdensity, skdensity.datasets; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "est",
    [
        MaskedGaussianSM(reg=0.0),
        MaskedGaussianMLE(reg=0.0),
        MaskedGaussianNCE(reg=0.0, noise_ratio=2, random_state=0, max_iter=30),
        MaskedGaussianCNCE(reg=0.0, random_state=0, max_iter=30),
        GaussianDensity(),
        ZCAWhitener(covariance_estimator=GaussianDensity()),
        TransformedDensity(ZCAWhitener(), GaussianDensity()),
    ],
    ids=lambda e: type(e).__name__,
)
def test_failed_refit_leaves_the_estimator_as_it_was(est):
    # A refit on wider data that fails (a singular covariance) must not
    # leave the new width with the old parameters.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence of the capped NCE fits
        fitted = clone(est).fit(X)
    before = dict(vars(fitted))
    expected = fitted.score_samples(X)
    wide = rng.normal(size=(300, 25))
    wide[:, 4] = wide[:, 3]  # collinear features: the covariance is singular
    with pytest.raises(ValueError):
        fitted.fit(wide)
    assert fitted.n_features_in_ == 16
    assert set(vars(fitted)) == set(before)
    assert all(vars(fitted)[key] is before[key] for key in before)
    np.testing.assert_array_equal(fitted.score_samples(X), expected)


@pytest.mark.slow
def test_failed_refit_leaves_the_energy_model_as_it_was():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    kw = dict(n_hidden=4, n_experts=4, max_epochs=2, n_ais_temperatures=10, random_state=0)
    fitted = DeepEnergyModel(**kw).fit(X)
    before = dict(vars(fitted))
    expected = fitted.score_samples(X)
    with pytest.raises(ValueError, match="squares overflow float32 training"):
        fitted.fit(1e200 * rng.normal(size=(200, 7)))
    assert fitted.n_features_in_ == 4
    assert all(vars(fitted)[key] is before[key] for key in before) and vars(fitted) == before
    np.testing.assert_array_equal(fitted.score_samples(X), expected)
