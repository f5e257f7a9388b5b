"""
Masked Gaussian models of MNIST: score matching vs maximum likelihood
=====================================================================

Fits :class:`~skdensity.MaskedGaussianSM` (score matching under the
positive-definite constraint) and :class:`~skdensity.MaskedGaussianMLE`
(covariance selection) with 4- and 8-connected masks on the embedded MNIST
digits, prints held-out log-likelihoods and fit times, and, when matplotlib
is installed, writes sample grids drawn both ways (Cholesky solve and
``mu + sqrtm(Sigma) e``) and the learned precision matrices to
``examples/output/``.

Run: ``python3 examples/plot_mnist_masked_gaussian.py``
"""

import time
from pathlib import Path

import numpy as np

from skdensity import MaskedGaussianMLE, MaskedGaussianSM
from skdensity.datasets import load_mnist

X = load_mnist().data
perm = np.random.default_rng(0).permutation(len(X))  # the file is sorted by label
X_train, X_test = X[perm[:8000]], X[perm[8000:]]

models = {}
print(f"{'model':<28}{'held-out nats/image':>22}{'fit s':>8}   certificate")
for connectivity in (4, 8):
    for Est in (MaskedGaussianSM, MaskedGaussianMLE):
        t0 = time.perf_counter()
        est = Est(connectivity=connectivity).fit(X_train)
        elapsed = time.perf_counter() - t0
        name = f"{Est.__name__}({connectivity})"
        models[name] = est
        extra = (
            f"unconstrained min eig {est.unconstrained_min_eigenvalue_:.3f}, "
            if hasattr(est, "unconstrained_min_eigenvalue_")
            else ""
        )
        print(
            f"{name:<28}{est.score(X_test):>22.2f}{elapsed:>8.2f}   "
            f"{extra}min eig {est.min_eigenvalue_:.4f}, KKT {est.kkt_residual_:.1e}"
        )

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skdensity.plotting import plot_image_grid, plot_matrix
except ImportError:
    print("matplotlib is not installed: skipping figures (pip install -e '.[plot]').")
else:
    out = Path(__file__).resolve().parent / "output"
    out.mkdir(exist_ok=True)
    for method in ("cholesky", "sqrtm"):
        # one row per model, the same random numbers in every row
        samples = np.concatenate(
            [est.sample(8, random_state=0, method=method) for est in models.values()]
        )
        fig = plot_image_grid(
            samples,
            n_cols=8,
            vmin=0,
            vmax=1,
            title=f"samples ({method}); rows: " + ", ".join(models),
        )
        fig.savefig(out / f"mnist_samples_{method}.png", dpi=120)
        plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    emp = models["MaskedGaussianMLE(8)"].empirical_covariance_ + 0.01 * np.eye(784)
    for ax, (title, M) in zip(
        axes,
        [
            ("empirical precision inv(S + reg I)", np.linalg.inv(emp)),
            ("SM precision, 8-connected", models["MaskedGaussianSM(8)"].precision_),
            ("MLE precision, 8-connected", models["MaskedGaussianMLE(8)"].precision_),
        ],
    ):
        plot_matrix(M[:200, :200], ax=ax, title=title + " (first 200 pixels)")
    fig.savefig(out / "mnist_precisions.png", dpi=120)
    plt.close(fig)
    print(f"figures written to {out}")
