"""
A deep energy model of natural image patches
============================================

:class:`~skdensity.DeepEnergyModel` is a product of experts on top of a
first layer of linear filters, trained by score matching (no normalising
constant needed), then normalised by annealed importance sampling (AIS) so
that it scores log-likelihoods like every other density here. Wrapped in a
:class:`~skdensity.TransformedDensity` with ZCA whitening, it is trained on
whitened 8x8 patches of photographs and scored on the patches' pixels. The
example shows the training curves, the first-layer filters mapped back to
pixels, samples, and the held-out likelihood beside a Gaussian's.

TensorFlow is imported by the energy model's ``fit`` only.
"""

# sphinx_gallery_thumbnail_number = 2

import warnings

import matplotlib.pyplot as plt
import numpy as np

from skdensity import (
    DeepEnergyModel,
    GaussianDensity,
    TransformedDensity,
    ZCAWhitener,
    localization_index,
    orientation_index,
)
from skdensity.datasets import extract_patches, load_natural_images
from skdensity.exceptions import UnreliableNormalizerWarning
from skdensity.plotting import plot_filters, plot_image_grid, plot_loss_curves

patches = extract_patches(load_natural_images().images, (8, 8), 20_000, random_state=0)
X = patches.reshape(len(patches), -1)
X_train, X_test = X[:16_000], X[16_000:]

# The fit warns when AIS's normaliser rests on few chains; the warning is
# caught here only to print it beside the bracket below.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", UnreliableNormalizerWarning)
    energy = TransformedDensity(
        ZCAWhitener(eps=0.01),
        DeepEnergyModel(n_hidden=64, n_experts=32, max_epochs=10, random_state=0),
    ).fit(X_train)
for warning in caught:
    print(f"warning: {warning.message}")
gaussian = TransformedDensity(ZCAWhitener(eps=0.01), GaussianDensity()).fit(X_train)

model = energy.density_
print(f"epochs run: {model.n_iter_}")
print(
    f"log Z by AIS: {model.log_partition_:.2f} ± {model.log_partition_std_:.2f}, "
    f"effective number of chains {model.ais_effective_sample_size_:.1f} "
    f"of {model.n_ais_chains}"
)
interval = model.log_partition_interval(random_state=0)
print(
    f"log Z bracket: forward AIS {interval.lower.value:.2f}, "
    f"reverse AIS {interval.upper.value:.2f} (width {interval.width:.2f} nats)"
)
for name, density in (("energy model", energy), ("Gaussian", gaussian)):
    print(f"{name:>13}: held-out {density.score(X_test) / X.shape[1]:.3f} nats per pixel")

# %%
# The energy model's likelihood is only as good as its normaliser. Here one
# AIS chain carries the weight, and reverse AIS from the model's samples
# lands far above forward AIS: ``log Z`` is uncertain by the bracket's
# width, so the held-out figure above is not a trustworthy comparison with
# the Gaussian's (whose normaliser is exact). The user guide's energy-model
# section says what to check before trusting such a figure.

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
# A filter responds to ``(x - mean) @ W @ v`` with ``W`` the symmetric
# whitening matrix, so in pixels it is ``W @ v``. Samples are drawn by
# Langevin dynamics in the whitened space and mapped back to pixels.

pixel_filters = model.filters_ @ energy.transformer_.whitening_
fig = plot_filters(pixel_filters, (8, 8), n_cols=16)
fig.suptitle("first-layer filters in pixels")
plt.show()

# %%
# Two numbers say what the grid shows. The localization index is the share
# of a filter's energy inside its best 4x4 window (1 when confined to it,
# about 0.25 when spread over the patch); the orientation index is 1 when
# all of its spectral power lies along one orientation, near 0 for noise or
# a centre-surround blob. Gabor-like filters, what models of natural images
# are expected to learn, score high on both.

indices = {
    "localization": localization_index(pixel_filters),
    "orientation": orientation_index(pixel_filters),
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

samples = energy.sample(16, random_state=0)
fig = plot_image_grid(np.concatenate([X_test[:16], samples]), (8, 8), n_cols=16, vmin=0, vmax=1)
fig.suptitle("top: held-out patches; bottom: samples of the energy model")
plt.show()

# %%
# The likelihood is only as reliable as the AIS estimate of ``log Z``. When
# a handful of chains carry the importance weight (an effective number of
# chains near 1), the standard error means little and AIS tends to
# underestimate ``log Z``, which overstates the likelihood: read such a
# gain over the Gaussian as unconfirmed, and raise ``n_ais_temperatures``
# (or ``n_ais_chains``) until the effective number of chains is large.
# Training longer, on larger patches, and the whitening ``eps`` all change
# the filters and the gain; this example keeps to what runs in under a
# minute.
