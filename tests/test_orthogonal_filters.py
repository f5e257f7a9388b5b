"""The energy model's recipe for natural images (issue 18): orthogonal filters
learned by score matching, the -log cosh first layer, non-negative expert
weights, and PCA whitening inside the estimator with a Gaussian on the
discarded components."""

import numpy as np
import pytest
from scipy.special import logsumexp

from skdensity import DeepEnergyModel, GaussianDensity
from skdensity.datasets import extract_patches, load_natural_images
from skdensity.energy._exact import ExactNormalizer
from skdensity.energy._inference import EnergyParams, annealed_importance_sampling
from skdensity.energy._orthogonal import orthogonal_score_matching_ica
from skdensity.metrics import localization_index, orientation_index

# The recipe's three switches; sizes and training length vary by test.
RECIPE = dict(first_layer="orthogonal", nonlinearity="logcosh", nonnegative_weights=True)
FAST = dict(max_epochs=2, batch_size=50, n_ais_chains=20, n_ais_temperatures=20, random_state=0)


def laplace_mixture(n=4000, d=6, seed=0):
    """Whitened data: unit-variance Laplace sources rotated by a random
    orthogonal matrix, returned with that matrix."""
    rng = np.random.default_rng(seed)
    S = rng.laplace(scale=1 / np.sqrt(2), size=(n, d))
    A, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return S @ A.T, A


def test_orthogonal_ica_recovers_sparse_sources():
    Z, A = laplace_mixture()
    result = orthogonal_score_matching_ica(Z, 6, rng=np.random.RandomState(0))
    V = result.filters
    np.testing.assert_allclose(V @ V.T, np.eye(6), atol=1e-10)
    assert result.converged and result.n_iter < 1000
    # each filter unmixes one source: V A is a signed permutation
    match = np.abs(V @ A)
    assert np.all(match.max(axis=1) > 0.95), match.round(2)
    assert sorted(match.argmax(axis=1)) == list(range(6))
    # fewer filters than dimensions: orthonormal rows, each still one source
    V3 = orthogonal_score_matching_ica(Z, 3, rng=np.random.RandomState(1)).filters
    np.testing.assert_allclose(V3 @ V3.T, np.eye(3), atol=1e-10)
    assert np.all(np.abs(V3 @ A).max(axis=1) > 0.95)


def test_orthogonal_ica_reports_a_budget_that_ran_out():
    Z, _ = laplace_mixture(n=500)
    result = orthogonal_score_matching_ica(Z, 6, max_iter=2, rng=np.random.RandomState(0))
    assert not result.converged and result.n_iter == 2


def test_with_n_components_the_density_covers_every_feature():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6)) @ rng.normal(size=(6, 6)) + 3.0
    dem = DeepEnergyModel(n_components=3, n_hidden=3, n_experts=2, **FAST).fit(X)
    assert dem.filters_.shape == (3, 3) and dem.input_filters_.shape == (3, 6)
    # Without experts and bias the energy is the standard normal of the three
    # whitened components, so the whole density is the Gaussian of the data:
    # the Jacobian and the discarded components are accounted for.
    dem.expert_weights_[:] = 0.0
    dem.visible_bias_[:] = 0.0
    dem.log_partition_ = 1.5 * np.log(2 * np.pi) + np.logaddexp(0, dem.expert_bias_).sum()
    np.testing.assert_allclose(
        dem.score_samples(X), GaussianDensity().fit(X).score_samples(X), rtol=1e-9
    )
    # samples live in feature space with the data's mean and spread
    samples = dem.sample(4000, random_state=0, n_steps=20, burn_in=20)
    assert samples.shape == (4000, 6)
    np.testing.assert_allclose(samples.mean(axis=0), X.mean(axis=0), atol=0.3)
    np.testing.assert_allclose(np.cov(samples.T), np.cov(X.T), atol=0.3 * np.abs(np.cov(X.T)).max())


def test_n_components_errors_and_partial_fit():
    X = np.random.default_rng(1).normal(size=(200, 5))
    with pytest.raises(ValueError, match="n_components=6 exceeds the 5 features"):
        DeepEnergyModel(n_components=6, **FAST).fit(X)
    # the first partial_fit call's batch fixes the components; later ones keep them
    streamed = DeepEnergyModel(n_components=3, n_hidden=3, n_experts=2, **FAST)
    streamed.partial_fit(X[:100])
    axes = streamed.whitening_axes_.copy()
    streamed.partial_fit(X[100:])
    np.testing.assert_array_equal(axes, streamed.whitening_axes_)
    dem = DeepEnergyModel(n_components=3, n_hidden=3, n_experts=2, **FAST)
    dem.fit(X)
    before = dem.expert_weights_.copy()
    dem.partial_fit(X[:50])  # continues in the fitted components
    assert dem.filters_.shape == (3, 3) and not np.array_equal(before, dem.expert_weights_)


def test_orthogonal_first_layer_is_learned_first_then_kept():
    Z, _ = laplace_mixture(n=1000, d=4)
    dem = DeepEnergyModel(
        n_hidden=4,
        n_experts=3,
        **RECIPE,
        learning_rate=0.05,  # large steps would push weights below zero
        **FAST,
    ).fit(Z)
    np.testing.assert_allclose(dem.filters_ @ dem.filters_.T, np.eye(4), atol=1e-10)
    assert np.all(dem.expert_weights_ >= 0)
    assert np.isfinite(dem.score_samples(Z)).all()
    assert "filters_momentum" not in dem.optimizer_state_  # never a trained parameter
    with pytest.raises(ValueError, match="n_hidden=5 orthonormal filters in 4 dimensions"):
        DeepEnergyModel(n_hidden=5, first_layer="orthogonal", **FAST).fit(Z)


@pytest.mark.slow
def test_the_recipe_learns_localized_oriented_filters_on_natural_patches():
    P = extract_patches(load_natural_images().images, (12, 12), 8000, random_state=0)
    recipe = DeepEnergyModel(
        n_components=36,
        n_hidden=36,
        n_experts=8,
        **RECIPE,
        max_epochs=1,
        n_ais_chains=20,
        n_ais_temperatures=20,
        random_state=0,
    ).fit(P)
    report = DeepEnergyModel(n_components=36, n_hidden=36, n_experts=8, **FAST).fit(P)
    loc = np.median(localization_index(recipe.input_filters_, (12, 12)))
    ori = np.median(orientation_index(recipe.input_filters_, (12, 12)))
    loc_free = np.median(localization_index(report.input_filters_, (12, 12)))
    # measured: recipe 0.587 / 0.719, free sigmoid filters 0.382 / 0.214
    # (a random rotation of the whitened space: 0.392 / 0.226)
    assert loc > 0.5 and ori > 0.5 and loc > loc_free + 0.15


def orthonormal_params(D, H, K, nonlinearity, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    V = np.linalg.qr(rng.normal(size=(D, D)))[0][:H]
    W = rng.normal(size=(K, H)) * 2
    if nonlinearity == "logcosh":
        W = np.abs(W)
    return EnergyParams(
        V, rng.normal(size=H), W, rng.normal(size=K), rng.normal(size=D) * 0.3, sigma, nonlinearity
    )


@pytest.mark.parametrize("nonlinearity", ["sigmoid", "logcosh"])
def test_exact_log_z_and_samples_match_grid_integration(nonlinearity):
    p = orthonormal_params(2, 2, 3, nonlinearity, seed=7)
    grid = np.linspace(-10, 10, 2001)
    G = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    log_p = p.log_unnormalized(G)
    brute = logsumexp(log_p) + 2 * np.log(grid[1] - grid[0])
    exact = ExactNormalizer(p).log_partition()
    # measured: agreement to 1e-11, quadrature error estimate below 1e-10
    assert abs(exact.value - brute) < 1e-8 and exact.std < 1e-8
    weights = np.exp(log_p - logsumexp(log_p))
    X = ExactNormalizer(p).sample(20000, np.random.default_rng(1))
    # moments within Monte Carlo error of 20,000 draws (measured: 0.002)
    np.testing.assert_allclose(X.mean(axis=0), weights @ G, atol=0.03)
    np.testing.assert_allclose((X**2).mean(axis=0), weights @ G**2, atol=0.05)


def test_exact_log_z_with_fewer_filters_than_dimensions_agrees_with_ais():
    p = orthonormal_params(3, 2, 3, "logcosh", seed=9, sigma=1.3)
    exact = ExactNormalizer(p).log_partition()
    ais = annealed_importance_sampling(
        p, n_chains=500, n_temperatures=500, rng=np.random.default_rng(0)
    )
    assert abs(exact.value - ais.value) < 4 * ais.std + 1e-3
    p.V = p.V * 1.1  # no longer orthonormal
    with pytest.raises(ValueError, match="orthonormal"):
        ExactNormalizer(p)


def test_the_recipe_is_normalised_exactly_and_sampled_exactly():
    Z, _ = laplace_mixture(n=1000, d=4)
    recipe = dict(n_hidden=4, n_experts=3, **RECIPE)
    dem = DeepEnergyModel(**recipe, **FAST).fit(Z)
    assert dem.normalizer_ == "exact" and dem.log_partition_std_ < 1e-6
    assert np.isnan(dem.ais_effective_sample_size_)
    X = dem.sample(5, random_state=0)
    np.testing.assert_array_equal(X, dem.sample(5, random_state=0, method="exact"))
    # forward AIS and reverse AIS from exact samples bracket the exact value
    interval = dem.log_partition_interval(n_chains=200, n_temperatures=200, random_state=0)
    noise = 3 * (interval.lower.std + interval.upper.std) + 1e-6
    assert interval.lower.value - noise <= dem.log_partition_ <= interval.upper.value + noise
    ais = DeepEnergyModel(**recipe, normalizer="ais", **FAST).fit(Z)
    assert ais.normalizer_ == "ais" and ais.ais_effective_sample_size_ > 1
    assert abs(ais.log_partition_ - dem.log_partition_) < 4 * ais.log_partition_std_ + 0.05
    with pytest.raises(ValueError, match="method='exact' needs a model"):
        DeepEnergyModel(n_hidden=2, n_experts=2, **FAST).fit(Z).sample(2, method="exact")
    with pytest.raises(ValueError, match="normalizer='exact' needs first_layer='orthogonal'"):
        DeepEnergyModel(normalizer="exact", **FAST).fit(Z)


@pytest.mark.slow
def test_the_recipe_beats_the_gaussian_on_held_out_pixels_with_a_certified_normaliser():
    P = extract_patches(load_natural_images().images, (8, 8), 15000, random_state=0)
    train, held_out = P[:10000], P[10000:]
    recipe = DeepEnergyModel(
        n_components=16,
        n_hidden=16,
        n_experts=8,
        **RECIPE,
        learning_rate=1e-2,
        max_epochs=10,
        random_state=0,
    ).fit(train)
    gaussian = GaussianDensity().fit(train)
    # a density of all 64 pixels against the full Gaussian (measured: +0.259)
    gain = (recipe.score_samples(held_out).mean() - gaussian.score_samples(held_out).mean()) / 64
    assert gain > 0.1
    assert recipe.normalizer_ == "exact" and recipe.log_partition_std_ < 1e-6
    # The exact log Z lies between forward AIS and reverse AIS from exact
    # samples. Forward AIS alone would mislead: its chains never enter the
    # experts' bumps, so it misses their mass with a tiny standard error
    # (measured: 14.83 +- 2e-6 against the exact 16.56; reverse 16.44 +- 0.20).
    interval = recipe.log_partition_interval(n_chains=100, n_temperatures=300, random_state=0)
    lower, upper = interval.lower, interval.upper
    assert lower.value - 3 * lower.std < recipe.log_partition_ < upper.value + 3 * upper.std
    assert lower.std < 0.1


def test_an_orthogonal_first_layer_that_did_not_settle_warns(monkeypatch):
    from sklearn.exceptions import ConvergenceWarning

    from skdensity.energy import _deep_energy

    def budget_ran_out(Z, n_filters, rng):
        return orthogonal_score_matching_ica(Z, n_filters, max_iter=1, rng=rng)

    monkeypatch.setattr(_deep_energy, "orthogonal_score_matching_ica", budget_ran_out)
    Z, _ = laplace_mixture(n=300, d=3)
    with pytest.warns(ConvergenceWarning, match="stopped after 1 descent steps"):
        DeepEnergyModel(n_hidden=3, n_experts=2, first_layer="orthogonal", **FAST).fit(Z)
