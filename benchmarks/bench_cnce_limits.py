"""What bounds conditional NCE's held-out log-likelihood on MNIST.

Two effects, each measured here on the split of ``bench_nce.py`` (8,000 /
2,000 digits, reg = 0.01, 8-connected):

1. **The small-noise limit.** With noise ``y = x + eps * M xi`` the cNCE
   objective tends, as ``eps -> 0``, to score matching in the metric
   ``A = M M'``: ``J_A(Lambda) = tr(Lambda A Lambda S) / 2 - tr(A Lambda)``
   (expand the loss to second order in ``eps``). ``A = I``
   (``noise_shape="isotropic"``) is :class:`MaskedGaussianSM`;
   ``A = S`` (``noise_shape="covariance"``) and ``A = inv(Lambda_SM)``, the
   covariance of the score matching estimate (``"score_matching"``, the
   default) are different estimates. Each ``J_A`` is a convex quadratic in
   the mask's free entries, minimised here exactly under ``Lambda >= eps I``
   (``metric_score_matching``: its Hessian formed densely, 3,754 unknowns).
   With ``A`` the model's own covariance its stationarity is maximum
   likelihood's; ``A = inv(MLE)`` is printed as that check.
2. **Sampling noise.** cNCE replaces the expectation over the noise by
   ``n_noise_draws`` draws per data point. Its curvature in the precision is
   then a sample average of ``n * n_noise_draws`` random rank-one terms in
   3,754 unknowns, which distorts it like a sample covariance with a
   dimension-to-sample ratio ``3754 / (n * n_noise_draws)`` (0.47 for one
   draw on 8,000 digits). The fits below show the resulting loss against
   the number of draws.

"smoothed" is the held-out log-likelihood of the data smoothed by
``N(0, reg I)``, the distribution every estimator fits (see
``bench_nce.py``).

Run: ``python3 benchmarks/bench_cnce_limits.py`` (about 10 minutes on 2
cores; ``--draws`` picks the draw counts, ``--skip-fits`` / ``--skip-limits``
run one part; 10 draws: ``--draws 10 --skip-limits --precompute``).
"""

import argparse
import time
import warnings

import numpy as np
from bench_nce import smoothed, smoothed_score  # same folder: run as a script
from scipy.stats import multivariate_normal

from skdensity import MaskedGaussianCNCE, MaskedGaussianMLE, MaskedGaussianSM
from skdensity.datasets import load_mnist
from skdensity.gaussian import metric_score_matching
from skdensity.gaussian._nce import start_and_preconditioner
from skdensity.gaussian._score_matching import resolve_eps
from skdensity.linalg import as_pairs
from skdensity.masks import grid_mask


def gaussian_score(X, mean, precision):
    """Mean log-density of ``N(mean, inv(precision))`` at the rows of ``X``."""
    return float(multivariate_normal(mean, np.linalg.inv(precision)).logpdf(X).mean())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reg", type=float, default=0.01)
    parser.add_argument("--draws", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument(
        "--shapes", nargs="+", default=["isotropic", "covariance", "score_matching"]
    )
    parser.add_argument("--seed", type=int, default=0, help="cNCE random_state")
    parser.add_argument("--skip-fits", action="store_true")
    parser.add_argument("--skip-limits", action="store_true")
    parser.add_argument(
        "--precompute",
        action="store_true",
        help="store the features whatever their size (4.8 GB at 10 draws)",
    )
    args = parser.parse_args()

    X = load_mnist().data
    perm = np.random.default_rng(0).permutation(len(X))
    X_train, X_test = X[perm[:8000]], X[perm[8000:]]
    mean = X_train.mean(axis=0)
    S = np.cov(X_train.T, bias=True) + args.reg * np.eye(X.shape[1])
    pairs = as_pairs(grid_mask((28, 28), 8))
    eps = resolve_eps("auto", S)

    mle_est = MaskedGaussianMLE(reg=args.reg).fit(X_train)
    mle = mle_est.score(X_test)
    print(
        f"MaskedGaussianMLE held-out: {mle:.2f}, smoothed "
        f"{smoothed_score(mle_est, X_test, args.reg):.2f}\n"
    )
    if not args.skip_limits:
        limits(args, S, pairs, eps, X_train, X_test, mean, mle)
    if not args.skip_fits:
        draws(args, pairs, X_train, X_test, mle)


def limits(args, S, pairs, eps, X_train, X_test, mean, mle):
    print("## 1. Small-noise limits (score matching in the noise's metric, exact)\n")
    print("| noise shape | metric A | held-out | below MLE | smoothed | KKT | s |")
    print("|---|---|---|---|---|---|---|")
    theta0, _ = start_and_preconditioner(
        S=S, pairs=pairs, eps=eps
    )  # cNCE's start, as the estimator
    mle_cov = MaskedGaussianMLE(reg=args.reg).fit(X_train).covariance_
    metrics = [
        ("isotropic", "I", np.eye(S.shape[0])),
        ("covariance", "S", S),
        ("score_matching", "inv(Lambda_SM)", np.linalg.inv(pairs.to_dense(theta0))),
        ("(check)", "inv(Lambda_MLE)", mle_cov),
    ]
    for shape, label, A in metrics:
        t0 = time.perf_counter()
        P, info = metric_score_matching(S, A, pairs, eps=eps)
        score = gaussian_score(X_test, mean, P)
        print(
            f"| {shape} | {label} | {score:.2f} | {100 * (mle - score) / mle:.2f}% "
            f"| {smoothed(score, P, args.reg):.2f} | {info.kkt_residual:.1e} "
            f"| {time.perf_counter() - t0:.1f} |",
            flush=True,
        )
    sm = MaskedGaussianSM(reg=args.reg).fit(X_train).score(X_test)
    print(f"\n(MaskedGaussianSM, the isotropic limit by its own solver: {sm:.2f})\n")


def draws(args, pairs, X_train, X_test, mle):
    print("## 2. cNCE against the number of noise draws (auto noise scale)\n")
    print(
        "| noise shape | draws | 3754 / (n draws) | held-out | below MLE | smoothed "
        "| noise scale | fit s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        for k in args.draws:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = MaskedGaussianCNCE(
                    reg=args.reg,
                    noise_shape=shape,
                    n_noise_draws=k,
                    random_state=args.seed,
                    precompute=True if args.precompute else "auto",
                ).fit(X_train)
            score = est.score(X_test)
            print(
                f"| {shape} | {k} | {pairs.n_pairs / (len(X_train) * k):.2f} | {score:.2f} "
                f"| {100 * (mle - score) / mle:.2f}% "
                f"| {smoothed_score(est, X_test, args.reg):.2f} | {est.noise_scale_:.3g} "
                f"| {time.perf_counter() - t0:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
