"""ZCAWhitener and TransformedDensity (issue 4)."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.covariance import OAS, GraphicalLasso, LedoitWolf
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skdensity import (
    GaussianDensity,
    MaskedGaussianMLE,
    MaskedGaussianSM,
    TransformedDensity,
    ZCAWhitener,
)
from skdensity.datasets import extract_patches, load_natural_images
from skdensity.exceptions import IllConditionedWarning


def correlated(n=2000, d=5, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d)) * np.linspace(0.2, 3, d)
    return rng.normal(size=(n, d)) @ A + rng.normal(size=d)


@pytest.mark.parametrize("eps", [0.0, 0.05, 1.0])
def test_whitened_covariance_is_what_eps_implies(eps):
    X = correlated()
    zca = ZCAWhitener(eps=eps).fit(X)
    Z = zca.transform(X)
    lam = zca.eigenvalues_
    C = np.cov(X.T, bias=True)
    w, U = np.linalg.eigh(C)
    expected = (U * (w / (w + zca.eps_))) @ U.T
    np.testing.assert_allclose(np.cov(Z.T, bias=True), expected, atol=1e-10)
    if eps == 0:
        np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(5), atol=1e-10)
    assert np.isclose(zca.eps_, eps * lam.mean())
    np.testing.assert_allclose(zca.whitening_, zca.whitening_.T, atol=1e-12)  # ZCA, not PCA
    np.testing.assert_allclose(zca.inverse_transform(Z), X, atol=1e-10)
    assert np.isclose(zca.log_abs_det_jacobian_, np.log(abs(np.linalg.det(zca.whitening_))))


def test_absolute_eps_and_scale_invariance_of_relative_eps():
    X = correlated()
    Z1 = ZCAWhitener(eps=0.1).fit_transform(X)
    Z2 = ZCAWhitener(eps=0.1).fit_transform(1000 * X)
    np.testing.assert_allclose(Z1, Z2, atol=1e-9)  # relative eps: scale-free
    zabs = ZCAWhitener(eps=0.3, relative_eps=False).fit(X)
    assert zabs.eps_ == 0.3


@pytest.mark.parametrize("Est", [MaskedGaussianMLE, MaskedGaussianSM])
def test_learned_precision_whitener_equals_empirical_with_full_mask(Est):
    X = correlated(d=6)
    full = np.ones((6, 6), dtype=bool)
    learned = ZCAWhitener(eps=0.0, covariance_estimator=Est(mask=full, reg=0.0)).fit(X)
    empirical = ZCAWhitener(eps=0.0).fit(X)
    np.testing.assert_allclose(learned.whitening_, empirical.whitening_, rtol=1e-6, atol=1e-8)
    # from a precision: W = Lambda^(1/2)
    P = learned.covariance_estimator_.precision_.toarray()
    np.testing.assert_allclose(learned.whitening_ @ learned.whitening_, P, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "est", [LedoitWolf(), OAS(), GraphicalLasso(alpha=0.01)], ids=lambda e: type(e).__name__
)
def test_sklearn_covariance_estimators(est):
    X = correlated()
    zca = ZCAWhitener(eps=0.0, covariance_estimator=est).fit(X)
    fitted = zca.covariance_estimator_
    # precision_ is preferred (GraphicalLasso's two attributes agree only to
    # its solver tolerance)
    np.testing.assert_allclose(
        zca.covariance_, np.linalg.inv(fitted.precision_), rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(zca.location_, fitted.location_)


def test_masked_covariance_on_patches_whitens_like_empirical_but_banded():
    P = extract_patches(load_natural_images().images, (8, 8), 5000, random_state=0)
    zca_mle = ZCAWhitener(eps=0.01, covariance_estimator=MaskedGaussianMLE(reg=1e-4)).fit(P)
    # the learned covariance matches the data on the mask (covariance selection)
    mask = zca_mle.covariance_estimator_.mask_.toarray()
    S = np.cov(P.T, bias=True)
    assert (
        np.abs((zca_mle.covariance_ - zca_mle.eps_ * np.eye(64) - S)[mask]).max() < 1e-3 * S.max()
    )


def test_zca_of_natural_patches_is_centre_surround_and_decorrelates():
    P = extract_patches(load_natural_images().images, (8, 8), 20000, random_state=0)
    zca = ZCAWhitener(eps=0.001).fit(P)
    Z = zca.transform(P)
    right = (
        lambda A: np.corrcoef(
            A.reshape(-1, 8, 8)[:, :, :-1].ravel(),  # noqa: E731
            A.reshape(-1, 8, 8)[:, :, 1:].ravel(),
        )[0, 1]
    )
    assert right(P) > 0.8 and abs(right(Z)) < 0.1
    c = 3 * 8 + 3  # an interior pixel
    f = zca.whitening_[c].reshape(8, 8)
    assert f[3, 3] > 0 and all(
        f[3 + dy, 3 + dx] < 0 for dy, dx in [(0, 1), (1, 0), (0, -1), (-1, 0)]
    )
    assert f[3, 3] > 3 * np.abs(np.delete(f.ravel(), c)).max()  # concentrated: a local filter


def test_zca_is_a_gaussian_density():
    X = correlated()
    zca = ZCAWhitener(eps=0.2).fit(X)
    ref = multivariate_normal(zca.location_, zca.covariance_).logpdf(X[:20])
    np.testing.assert_allclose(zca.score_samples(X[:20]), ref, rtol=1e-10)
    Y = zca.sample(100_000, random_state=0)
    np.testing.assert_allclose(
        np.cov(Y.T), zca.covariance_, atol=0.03 * np.abs(zca.covariance_).max()
    )
    np.testing.assert_array_equal(Y[:3], zca.sample(100_000, random_state=0)[:3])


def test_zca_errors_and_warnings():
    X = correlated()
    X[:, 4] = X[:, 3]  # singular covariance
    with pytest.raises(ValueError, match="singular.*eps > 0"):
        ZCAWhitener(eps=0.0).fit(X)
    with pytest.warns(IllConditionedWarning, match="Increase eps"):
        ZCAWhitener(eps=1e-12).fit(X)

    class Indefinite:
        def fit(self, X, y=None):
            self.precision_ = np.diag([1.0, -1.0, 1.0, 1.0, 1.0])
            return self

        def get_params(self, deep=True):
            return {}

        def set_params(self, **p):
            return self

    with pytest.raises(ValueError, match="not positive definite"):
        ZCAWhitener(covariance_estimator=Indefinite()).fit(correlated())
    with pytest.raises(ValueError, match="NaN"):
        ZCAWhitener().fit(np.full((10, 3), np.nan))
    zca = ZCAWhitener().fit(correlated())
    with pytest.raises(ValueError, match="5 features"):
        zca.transform(np.ones((2, 3)))


def test_set_output_pandas():
    import pandas as pd

    X = pd.DataFrame(correlated(), columns=list("abcde"))
    Z = ZCAWhitener().set_output(transform="pandas").fit_transform(X)
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == list("abcde")


# -- TransformedDensity ---------------------------------------------------


@pytest.mark.parametrize("eps", [1e-6, 0.1, 10.0])
def test_transformed_density_scores_in_the_original_space(eps):
    X = correlated()
    direct = GaussianDensity().fit(X).score(X)
    td = TransformedDensity(ZCAWhitener(eps=eps, relative_eps=False), GaussianDensity()).fit(X)
    assert np.isclose(td.score(X), direct, rtol=1e-10)
    naive = make_pipeline(ZCAWhitener(eps=eps, relative_eps=False), GaussianDensity()).fit(X)
    # the naive pipeline is off by exactly the missing log-Jacobian
    assert np.isclose(naive.score(X), direct - td.transformer_.log_abs_det_jacobian_)


def test_grid_search_over_eps_is_honest():
    X = correlated(n=600)
    grid = {"transformer__eps": [1e-6, 0.1, 10.0]}
    honest = GridSearchCV(
        TransformedDensity(ZCAWhitener(relative_eps=False), GaussianDensity()), grid, cv=3
    ).fit(X)
    s = honest.cv_results_["mean_test_score"]
    direct = np.mean([GaussianDensity().fit(X[tr]).score(X[te]) for tr, te in KFold(3).split(X)])
    np.testing.assert_allclose(s, direct, rtol=1e-9)  # eps cannot change a full Gaussian's fit
    naive = GridSearchCV(
        make_pipeline(ZCAWhitener(relative_eps=False), GaussianDensity()),
        {"zcawhitener__eps": grid["transformer__eps"]},
        cv=3,
    ).fit(X)
    assert naive.best_params_["zcawhitener__eps"] == 10.0  # the bug being fixed
    assert np.ptp(naive.cv_results_["mean_test_score"]) > 1.0


@pytest.mark.parametrize(
    "transformer",
    [StandardScaler(), PCA(whiten=True), PCA(), ZCAWhitener()],
    ids=["scaler", "pca_whiten", "pca", "zca"],
)
def test_known_jacobians(transformer):
    X = correlated()
    td = TransformedDensity(transformer, GaussianDensity()).fit(X)
    np.testing.assert_allclose(
        td.score_samples(X[:50]), GaussianDensity().fit(X).score_samples(X[:50]), rtol=1e-8
    )


def test_unknown_or_non_invertible_jacobian_is_an_error():
    X = correlated()
    with pytest.raises(ValueError, match="log-Jacobian of FunctionTransformer is unknown"):
        TransformedDensity(
            FunctionTransformer(np.tanh, np.arctanh, check_inverse=False), GaussianDensity()
        ).fit(X)
    with pytest.raises(ValueError, match="not invertible"):
        TransformedDensity(PCA(n_components=2), GaussianDensity()).fit(X)


def test_transformed_sampling_maps_back():
    X = correlated()
    td = TransformedDensity(ZCAWhitener(eps=0.0), GaussianDensity()).fit(X)
    Y = td.sample(100_000, random_state=0)
    C = np.cov(X.T, bias=True)
    np.testing.assert_allclose(np.cov(Y.T), C, atol=0.03 * np.abs(C).max())
    np.testing.assert_allclose(Y.mean(0), X.mean(0), atol=0.05 * np.sqrt(C.diagonal()).max())
    gm = TransformedDensity(ZCAWhitener(), GaussianMixture(2, random_state=0)).fit(X)
    assert gm.sample(7).shape == (7, 5)  # GaussianMixture.sample returns (X, labels)


def test_transformed_persistence_and_nested_params():
    X = correlated()
    td = TransformedDensity(ZCAWhitener(eps=0.2), MaskedGaussianMLE()).fit(X)
    again = pickle.loads(pickle.dumps(td))
    np.testing.assert_array_equal(again.score_samples(X), td.score_samples(X))
    np.testing.assert_array_equal(clone(td).fit(X).score_samples(X), td.score_samples(X))
    assert td.get_params()["transformer__eps"] == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        td.set_params(density__reg=0.05).fit(X)
    assert td.density_.reg == 0.05


def test_zca_persistence_and_bad_n_samples(tmp_path):
    import joblib

    X = correlated()
    zca = ZCAWhitener(covariance_estimator=MaskedGaussianSM()).fit(X)
    joblib.dump(zca, tmp_path / "z.joblib")
    for other in (
        pickle.loads(pickle.dumps(zca)),
        joblib.load(tmp_path / "z.joblib"),
        clone(zca).fit(X),
    ):
        np.testing.assert_array_equal(other.transform(X), zca.transform(X))
        np.testing.assert_array_equal(other.score_samples(X), zca.score_samples(X))
    with pytest.raises(ValueError, match="n_samples"):
        zca.sample(0)


def test_whitening_with_an_nce_precision():
    from skdensity import MaskedGaussianNCE

    X = correlated(n=800, d=4)
    zca = ZCAWhitener(
        eps=0.0, covariance_estimator=MaskedGaussianNCE(noise_ratio=2, random_state=0)
    ).fit(X)
    P = zca.covariance_estimator_.precision_.toarray()
    np.testing.assert_allclose(
        zca.whitening_ @ zca.whitening_, P, rtol=1e-8, atol=1e-10
    )  # W = Lambda^(1/2)
