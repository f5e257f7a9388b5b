"""
A deep energy model of natural image patches
============================================

:class:`~skdensity.DeepEnergyModel` is a product of experts on top of a
first layer of linear filters, trained by score matching (no normalising
constant needed). With the recipe for natural images it whitens the patches'
leading principal components itself (a Gaussian models the others, so it is
a density of every pixel), learns orthonormal ``-log cosh`` filters first,
then non-negative experts that pool their responses; with orthonormal
filters and at most 20 experts its normalising constant, and its samples,
are exact. The example shows the training curves, the filters in pixels with
their localization and orientation, samples, the normaliser beside forward
and reverse annealed importance sampling (AIS), and the held-out likelihood
beside the Gaussian's.

TensorFlow is imported by the energy model's ``fit`` only.
"""

# sphinx_gallery_thumbnail_number = 2

import matplotlib.pyplot as plt
import numpy as np

from skdensity import DeepEnergyModel, GaussianDensity, localization_index, orientation_index
from skdensity.datasets import extract_patches, load_natural_images
from skdensity.plotting import plot_filters, plot_image_grid, plot_loss_curves

side = 12
patches = extract_patches(load_natural_images().images, (side, side), 15_000, random_state=0)
X_train, X_test = patches[:10_000], patches[10_000:]

model = DeepEnergyModel(
    n_components=36,  # PCA-whitened here; a Gaussian models the other 108 components
    n_hidden=36,
    n_experts=8,
    first_layer="orthogonal",
    nonlinearity="logcosh",
    nonnegative_weights=True,
    learning_rate=1e-2,
    max_epochs=10,
    random_state=0,
).fit(X_train)
gaussian = GaussianDensity().fit(X_train)

print(f"epochs run: {model.n_iter_}")
print(f"log Z ({model.normalizer_}): {model.log_partition_:.3f}")
interval = model.log_partition_interval(random_state=0)
print(
    f"forward AIS {interval.lower.value:.3f} ± {interval.lower.std:.3f}, "
    f"reverse AIS from exact samples {interval.upper.value:.3f} ± {interval.upper.std:.3f}"
)
D = X_train.shape[1]
for name, density in (("energy model", model), ("Gaussian", gaussian)):
    print(f"{name:>13}: held-out {density.score(X_test) / D:.3f} nats per pixel")

# %%
# Both are densities of all 144 pixels with exact normalisers, so the
# held-out figures compare directly. Forward AIS, started from the base
# Gaussian, can miss the experts' mass: they are bumps where the
# low-contrast patches lie, which its chains may never enter; then its
# estimate errs low with a small standard error. The exact value, and
# reverse AIS from exact samples, show by how much.

# %%
# Training curves
# ---------------
# The score matching objective on the training batches and on the held-out
# share that early stopping watches (its negative, so higher is better).

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
plot_loss_curves({"training objective": model.loss_curve_}, ax=axes[0], xlabel="epoch")
plot_loss_curves(
    {"held-out (negative objective)": model.validation_scores_}, ax=axes[1], xlabel="epoch"
)
fig.tight_layout()
plt.show()

# %%
# Filters and samples
# -------------------
# ``input_filters_`` are the filters as they act on pixels (composed with
# the whitening). Samples are exact draws of the model, mapped to pixels.

fig = plot_filters(model.input_filters_, (side, side), n_cols=12)
fig.suptitle("first-layer filters in pixels")
plt.show()

# %%
# Two numbers say what the grid shows. The localization index is the share
# of a filter's energy inside its best 6x6 window (1 when confined to it,
# about 0.25 when spread over the patch); the orientation index is 1 when
# all of its spectral power lies along one orientation, near 0 for noise or
# a centre-surround blob. Gabor-like filters, what models of natural images
# are expected to learn, score high on both.

indices = {
    "localization": localization_index(model.input_filters_),
    "orientation": orientation_index(model.input_filters_),
}
for name, values in indices.items():
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    print(f"{name} index: median {q2:.2f}, quartiles {q1:.2f}-{q3:.2f}")
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
for ax, (name, values) in zip(axes, indices.items()):
    ax.hist(values, bins=20, range=(0, 1))
    ax.set_xlabel(f"{name} index")
axes[0].set_ylabel("filters")
fig.tight_layout()
plt.show()

samples = model.sample(12, random_state=0)
fig = plot_image_grid(
    np.concatenate([X_test[:12], samples]), (side, side), n_cols=12, vmin=0, vmax=1
)
fig.suptitle("top: held-out patches; bottom: samples of the energy model")
plt.show()

# %%
# The report's model (``DeepEnergyModel()`` with its defaults: sigmoid
# filters trained with the experts, normalised by AIS) learns gratings or
# noise-like filters on the same patches; the user guide's energy-model
# section compares the two and says what to check before trusting an AIS
# normaliser.
