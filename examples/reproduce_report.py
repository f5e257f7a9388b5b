"""
Reproduce the course report, correctly, on embedded data
========================================================

One command, progress on the terminal, figures and ``report.md`` in the
output folder:

    python3 examples/reproduce_report.py [--out report] [--quick]

Exercise 1 (MNIST minus its mean): masked Gaussians with 4- and
8-connected precision fitted by score matching (positive-definite
guarantee), NCE, conditional NCE and maximum likelihood; samples drawn both
ways; empirical vs learned precisions; convergence curves; held-out
log-likelihoods.

Exercise 2 (natural 28x28 patches from scikit-learn's photographs): ZCA
whitening with the empirical and the learned covariance; the energy model
trained by score matching on PCA-whitened patches (100 components, see the
user guide for why not all 784) for sigma = 1 and 0.1, its first-layer
filters mapped back to pixels; normalised (AIS) log-likelihoods of held-out
natural patches and of MNIST digits in one input space, and the AUROC of
telling them apart by likelihood.

Subset sizes keep the run to minutes on two cores; ``--quick`` shrinks them
further (used to test the script).
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="report")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    from sklearn.decomposition import PCA
    from sklearn.metrics import roc_auc_score

    from skdensity import (
        DeepEnergyModel,
        GaussianDensity,
        MaskedGaussianCNCE,
        MaskedGaussianMLE,
        MaskedGaussianNCE,
        MaskedGaussianSM,
        ZCAWhitener,
    )
    from skdensity.datasets import extract_patches, load_mnist, load_natural_images
    from skdensity.plotting import plot_filters, plot_image_grid, plot_loss_curves, plot_matrix

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report = ["# The course report, reproduced with skdensity", ""]

    def step(msg):
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", flush=True)

    def save(fig, name):
        fig.savefig(out / name, dpi=100, bbox_inches="tight")
        matplotlib.pyplot.close(fig)
        return name

    q = args.quick
    n_train, n_nce = (1000, 300) if q else (8000, 2000)
    nce_iter = 30 if q else 200

    # ---------------------------------------------------------------- Exercise 1
    step("Exercise 1: MNIST")
    X = load_mnist().data
    perm = np.random.default_rng(0).permutation(len(X))
    X_train, X_test = X[perm[:n_train]], X[perm[8000:]]
    rows, curves, models = [], {}, {}
    for conn in (4, 8):
        sm = MaskedGaussianSM(connectivity=conn)
        candidates = {
            f"SM ({conn})": sm,
            f"MLE ({conn})": MaskedGaussianMLE(connectivity=conn),
            f"NCE ({conn})": MaskedGaussianNCE(connectivity=conn, noise_ratio=1, max_iter=nce_iter,
                                               random_state=0),
            f"cNCE ({conn})": MaskedGaussianCNCE(connectivity=conn, n_noise_draws=1,
                                                 max_iter=nce_iter, random_state=0),
        }
        for name, est in candidates.items():
            step(f"  fitting {name}")
            t0 = time.perf_counter()
            data = X_train if name.startswith(("SM", "MLE")) else X_train[:n_nce]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(data)
            models[name] = est
            rows.append((name, len(data), est.score(X_test), time.perf_counter() - t0,
                         est.min_eigenvalue_))
            if hasattr(est, "loss_curve_"):
                curves[name] = est.loss_curve_
    report += ["## Exercise 1: masked Gaussians of MNIST", "",
               "| model (connectivity) | training digits | held-out nats/image | fit s | min eigenvalue |",
               "|---|---|---|---|---|"]
    report += [f"| {n} | {m} | {s:.2f} | {t:.1f} | {e:.4f} |" for n, m, s, t, e in rows]
    sm8 = models["SM (8)"]
    report += ["", f"The unconstrained score matching optimum (8-connected) has smallest "
               f"eigenvalue {sm8.unconstrained_min_eigenvalue_:.3f}: not a Gaussian. The "
               f"constrained one pins {sm8.n_active_} direction(s) at eps = {sm8.eps_:.4f}.", ""]
    for method in ("cholesky", "sqrtm"):
        name = save(plot_image_grid(np.concatenate([m.sample(8, random_state=0, method=method)
                                                    for m in models.values()]),
                                    n_cols=8, vmin=0, vmax=1,
                                    title=f"samples ({method}); rows: " + ", ".join(models)),
                    f"ex1_samples_{method}.png")
        report.append(f"![samples {method}]({name})")
    fig, axes = matplotlib.pyplot.subplots(1, 3, figsize=(12, 4))
    emp = np.linalg.inv(sm8.empirical_covariance_ + sm8.reg * np.eye(784))
    for ax, (title, M) in zip(axes, [("empirical precision", emp), ("SM (8)", sm8.precision_),
                                     ("MLE (8)", models["MLE (8)"].precision_)]):
        plot_matrix(M[:200, :200], ax=ax, title=title + ", first 200 pixels")
    report.append(f"![precisions]({save(fig, 'ex1_precisions.png')})")
    ax = plot_loss_curves(curves, title="NCE / cNCE loss")
    report += [f"![curves]({save(ax.figure, 'ex1_curves.png')})", ""]

    # ---------------------------------------------------------------- Exercise 2
    step("Exercise 2: natural patches")
    n_patches = 5000 if q else 50000
    P = extract_patches(load_natural_images().images, (28, 28), n_patches + 2000, random_state=0)
    P_train, P_test = P[:n_patches], P[n_patches:]
    report += ["## Exercise 2: natural patches", "",
               f"{n_patches} training patches of 28x28, 2,000 held out.", ""]
    report.append(f"![patches]({save(plot_image_grid(P[:16], vmin=0, vmax=1, title='patches'), 'ex2_patches.png')})")
    step("  ZCA whitening (empirical and learned covariance)")
    for label, cov in (("empirical", None), ("learned, 8-connected SM", MaskedGaussianSM(reg=1e-3))):
        zca = ZCAWhitener(eps=0.1, covariance_estimator=cov).fit(P_train)
        name = save(plot_image_grid(zca.transform(P[:16]), symmetric=True, title=f"ZCA ({label})"),
                    f"ex2_zca_{label.split(',')[0]}.png")
        report.append(f"![zca {label}]({name})")

    step("  energy model on PCA-whitened patches")
    pca = PCA(n_components=100, whiten=True, random_state=0).fit(P_train)
    Z_train, Z_test = pca.transform(P_train), pca.transform(P_test)
    M_test = pca.transform(X_test[: 2000])  # MNIST digits in the same input space
    rows, curves = [], {}
    gauss = GaussianDensity().fit(Z_train)
    candidates = {"Gaussian": gauss}
    for sigma in (1.0, 0.1):
        dem = DeepEnergyModel(sigma=sigma, max_epochs=3 if q else 25, n_ais_chains=100,
                              n_ais_temperatures=200 if q else 1000, random_state=0)
        step(f"  training energy model, sigma={sigma}")
        candidates[f"energy model, sigma={sigma}"] = dem.fit(Z_train)
        curves[f"sigma={sigma}"] = dem.loss_curve_
        # unit j responds to v_j' z with z = W_pca (x - mean): its pixel filter
        filters = dem.filters_ @ (pca.components_ / np.sqrt(pca.explained_variance_)[:, None])
        report.append(f"![filters]({save(plot_filters(filters, title=f'filters in pixels, sigma={sigma}'), f'ex2_filters_sigma{sigma}.png')})")
    ax = plot_loss_curves(curves, ylabel="score matching objective", title="energy model training")
    report += [f"![energy curves]({save(ax.figure, 'ex2_energy_curves.png')})", ""]
    report += ["Log-likelihoods in the PCA-whitened space of the natural patches (100 dims), "
               "normalised (AIS for the energy models):", "",
               "| model | held-out patches, 10 | held-out patches, 100 | MNIST, 10 | MNIST, 100 | AUROC (natural vs MNIST) | log Z +- s.e. |",
               "|---|---|---|---|---|---|---|"]
    for name, est in candidates.items():
        sp, sm_ = est.score_samples(Z_test[:100]), est.score_samples(M_test[:100])
        auroc = roc_auc_score(np.r_[np.ones(len(Z_test)), np.zeros(len(M_test))],
                              np.r_[est.score_samples(Z_test), est.score_samples(M_test)])
        logz = (f"{est.log_partition_:.2f} +- {est.log_partition_std_:.2f}"
                if hasattr(est, "log_partition_") else "exact")
        report.append(f"| {name} | {sp[:10].mean():.1f} | {sp.mean():.1f} | {sm_[:10].mean():.1f} | "
                      f"{sm_.mean():.1f} | {auroc:.3f} | {logz} |")
    report += ["", "An AUROC below 0.5 means the model rates MNIST digits *more* likely than "
               "natural patches, as likelihood models often do for simple images "
               "(Nalisnick et al. 2019); above 0.5, natural patches score higher.", "",
               f"Total run time: {time.perf_counter() - start:.0f} s."]
    (out / "report.md").write_text("\n".join(report) + "\n")
    step(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
