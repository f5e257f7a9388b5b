"""Do score matching's first-layer filters come out localized and oriented?

On 40,000 16x16 patches of the embedded photographs, PCA-whitened to 64
components, three sets of 64 filters mapped back to pixels and measured by
``localization_index`` and ``orientation_index`` (medians):

* a random rotation of the whitened space (what noise-like filters score);
* scikit-learn's ``FastICA``, what a user would pick to get Gabor-like
  filters;
* score matching of the ICA model ``log p(z) = -sum_h log cosh(v_h' z)``
  with an orthogonal ``V`` (the objective is ``sum_h (1.5 tanh(s_h)^2 - 1)``
  per patch), minimised by full-batch Riemannian gradient descent on the
  orthogonal group: a gradient step, the polar factor as retraction, and
  backtracking.

* ``DeepEnergyModel`` with the recipe (``n_components=64,
  first_layer="orthogonal", nonlinearity="logcosh",
  nonnegative_weights=True``), whose first layer is that descent run by the
  estimator, beside the report's model (sigmoid filters trained with the
  experts) on the same whitening; their ``input_filters_`` are measured.

The score matching objective of each set is printed beside the indices.

Run: ``python3 benchmarks/bench_filters.py [--steps 600]``
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.decomposition import PCA, FastICA

from skdensity import DeepEnergyModel
from skdensity.datasets import extract_patches, load_natural_images
from skdensity.metrics import localization_index, orientation_index


def polar(V):
    """The orthogonal matrix nearest ``V``."""
    u, _, vt = np.linalg.svd(V)
    return u @ vt


def sm_objective(V, Z):
    """Score matching objective of the log-cosh ICA model and its gradient in V."""
    t = np.tanh(Z @ V.T)
    return np.mean((1.5 * t * t - 1).sum(axis=1)), (3 * t * (1 - t * t)).T @ Z / len(Z)


def riemannian_descent(Z, V, steps):
    eta = 1.0
    for _ in range(steps):
        loss, grad = sm_objective(V, Z)
        while eta > 1e-8:
            candidate = polar(V - eta * grad)
            if sm_objective(candidate, Z)[0] < loss:
                V, eta = candidate, eta * 1.2
                break
            eta *= 0.5
    return V


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--n-patches", type=int, default=40000)
    args = parser.parse_args()

    side, k = 16, 64
    P = extract_patches(load_natural_images().images, (side, side), args.n_patches, random_state=0)
    pca = PCA(n_components=k, whiten=True, random_state=0).fit(P)
    Z = pca.transform(P)
    to_pixels = pca.components_ / np.sqrt(pca.explained_variance_)[:, None]

    rows = {}
    start = polar(np.random.default_rng(0).normal(size=(k, k)))
    rows["random rotation"] = (start, 0.0)
    t0 = time.perf_counter()
    ica = FastICA(n_components=k, whiten="unit-variance", random_state=0, max_iter=400).fit(
        P - P.mean(axis=0)
    )
    # FastICA's unmixing rows, expressed in the same whitened coordinates
    rows["FastICA"] = (polar(ica.components_ @ np.linalg.pinv(to_pixels)), time.perf_counter() - t0)
    t0 = time.perf_counter()
    rows["score matching, orthogonal descent"] = (
        riemannian_descent(Z, start, args.steps),
        time.perf_counter() - t0,
    )

    estimators = {
        "DeepEnergyModel, report's model (sigmoid, free filters)": DeepEnergyModel(
            n_components=k, n_hidden=k, max_epochs=5, random_state=0
        ),
        "DeepEnergyModel, recipe (orthogonal, -log cosh)": DeepEnergyModel(
            n_components=k,
            n_hidden=k,
            n_experts=16,
            first_layer="orthogonal",
            nonlinearity="logcosh",
            nonnegative_weights=True,
            max_epochs=5,
            random_state=0,
        ),
    }
    for name, estimator in estimators.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the normaliser plays no part here
            estimator.fit(P)
        # the fitted filters in the whitened coordinates of ``pca`` (same data)
        rows[name] = (
            estimator.input_filters_ @ np.linalg.pinv(to_pixels),
            time.perf_counter() - t0,
        )

    def objective(V):
        """The ICA model's objective, defined for orthonormal filters only."""
        return f"{sm_objective(V, Z)[0]:.2f}" if np.allclose(V @ V.T, np.eye(k), atol=1e-3) else "-"

    print(f"{args.n_patches} patches of {side}x{side}, PCA-whitened to {k} components\n")
    print("| filters | SM objective | localization median | orientation median | s |")
    print("|---|---|---|---|---|")
    for name, (V, seconds) in rows.items():
        F = V @ to_pixels
        print(
            f"| {name} | {objective(V)} "
            f"| {np.median(localization_index(F, (side, side))):.3f} "
            f"| {np.median(orientation_index(F, (side, side))):.3f} | {seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
