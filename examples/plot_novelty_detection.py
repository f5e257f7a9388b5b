"""
Novelty detection with a density: ROC curves against scikit-learn's detectors
=============================================================================

:class:`~skdensity.DensityOutlierDetector` puts any density into
scikit-learn's outlier API: fitted on inliers, it flags what the density
finds unlikely (``predict`` gives -1), and ``score_samples`` ranks new data
by log-likelihood. Here the inliers are MNIST digits; the novelties are
patches of photographs and digits turned by 90 degrees. The detectors:

* the 8-connected :class:`~skdensity.MaskedGaussianSM` density;
* the same density as a likelihood ratio against a *reference* density
  fitted on perturbed digits (20% of the pixels replaced by noise), the
  background model of Ren et al. (2019), which discounts what any image
  model finds easy, such as smooth regions;
* :class:`~sklearn.covariance.EllipticEnvelope` on 30 principal components
  (a robust covariance in 784 dimensions is out of reach),
  :class:`~sklearn.ensemble.IsolationForest` and
  :class:`~sklearn.neighbors.LocalOutlierFactor` (``novelty=True``).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.covariance import EllipticEnvelope
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline

from skdensity import DensityOutlierDetector, MaskedGaussianSM
from skdensity.datasets import extract_patches, load_mnist, load_natural_images

rng = np.random.default_rng(0)
digits = load_mnist().data[rng.permutation(10_000)]
digits = digits + rng.uniform(0, 1 / 256, digits.shape)  # dequantised
X_train, inliers = digits[:3000], digits[3000:4000]
novelties = {
    "photograph patches": extract_patches(
        load_natural_images().images, (28, 28), 1000, random_state=0
    ).reshape(1000, -1),
    "rotated digits": np.rot90(digits[4000:5000].reshape(-1, 28, 28), axes=(1, 2)).reshape(
        1000, -1
    ),
}

perturbed = X_train.copy()
replaced = rng.random(perturbed.shape) < 0.2
perturbed[replaced] = rng.random(replaced.sum())
background = MaskedGaussianSM().fit(perturbed)

detectors = {
    "density (SM)": DensityOutlierDetector(MaskedGaussianSM()),
    "likelihood ratio (SM)": DensityOutlierDetector(MaskedGaussianSM(), reference=background),
    "EllipticEnvelope (PCA 30)": make_pipeline(
        PCA(30, random_state=0), EllipticEnvelope(random_state=0)
    ),
    "IsolationForest": IsolationForest(random_state=0),
    "LocalOutlierFactor": LocalOutlierFactor(novelty=True),
}
for detector in detectors.values():
    detector.fit(X_train)

# %%
# Every detector's ``score_samples`` is higher for more normal data, so one
# ROC curve per detector and novelty type compares them without choosing a
# threshold. ``predict`` applies each detector's own threshold; the share of
# held-out inliers it keeps is printed beside the areas under the curves.

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
print(f"{'detector':<28}" + "".join(f"{name:>22}" for name in novelties) + f"{'inliers kept':>15}")
for name, detector in detectors.items():
    row = f"{name:<28}"
    for ax, (kind, X_new) in zip(axes, novelties.items()):
        y_true = np.r_[np.ones(len(inliers)), np.zeros(len(X_new))]
        scores = np.r_[detector.score_samples(inliers), detector.score_samples(X_new)]
        row += f"{roc_auc_score(y_true, scores):>22.3f}"
        RocCurveDisplay.from_predictions(y_true, scores, name=name, ax=ax, plot_chance_level=False)
        ax.set_title(f"digits against {kind}")
    print(row + f"{np.mean(detector.predict(inliers) == 1):>15.1%}")
for ax in axes:
    ax.set_xlabel("novelties passed as normal (false positive rate)")
    ax.set_ylabel("inliers passed as normal (true positive rate)")
    ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %%
# The raw likelihood is partly fooled by smooth photograph patches, which
# any Gaussian image model finds easy; the likelihood ratio discounts that
# and comes close to the isolation forest and the local outlier factor,
# which find photographs far from every digit. Rotated digits have digits'
# strokes in the wrong places: the density models and the local outlier
# factor see it, the isolation forest and the low-dimensional envelope much
# less. The density detectors' default threshold (``contamination="auto"``,
# Tukey's lower fence of the training scores) keeps most held-out inliers.
