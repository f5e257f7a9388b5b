"""NCE and conditional NCE against score matching and maximum likelihood.

Fit time and held-out mean log-likelihood (nats per image) of the masked
Gaussians on MNIST-10k (8,000 / 2,000 split of the notes, reg = 0.01,
8-connected) or on natural 28x28 patches, all in one run so the times
compare.

The "set-up" columns time the same estimator with ``max_iter=1``: the
work every fit does once (noise draws and log-densities, the design matrix,
the score matching start and preconditioner) plus one iteration. What a
fit costs beyond it is its iterations; "/ SM" of the set-up bounds what
any solver of these objectives on this machine could reach.

"held-out, smoothed" is the held-out log-likelihood of the data every
estimator actually fits, ``x + N(0, reg I)`` (score matching and maximum
likelihood through ``S + reg I``, NCE and cNCE through smoothed samples):
for a Gaussian, ``E log p(x + n) = log p(x) - reg / 2 * tr(Lambda)`` exactly,
so no noise is drawn. The plain held-out score rewards a precision larger
than the floor allows along directions where the data do not vary (MNIST's
constant border pixels): measured, cNCE with ``noise_scale=0.15`` scores
709.2 there against maximum likelihood's 633.75, but 161.98 against 383.75
smoothed.

Run: ``python3 benchmarks/bench_nce.py --data mnist``
     ``python3 benchmarks/bench_nce.py --data patches --n-train 50000 --nu 1 --precompute``

Memory: stored features take ``(1 + nu) * n_train * n_pairs`` floats for
NCE (2.6 GB for nu = 10 on MNIST, 3.6 GB for nu = 1 on 50,000 patches) and
``2 * n_noise_draws * n_train * n_pairs`` for whole-image cNCE (single-pixel
cNCE keeps its draws only, the data's size per draw). The estimators store
them up to 4 GiB and otherwise recompute them on every product
(``precompute="auto"``); ``--precompute`` stores them whatever their size
(faster, if the machine has the memory).
"""

import argparse
import time
import warnings

import numpy as np

from skdensity import (
    MaskedGaussianCNCE,
    MaskedGaussianMLE,
    MaskedGaussianNCE,
    MaskedGaussianSM,
)
from skdensity.datasets import extract_patches, load_mnist, load_natural_images


def smoothed(score, precision, reg):
    """Mean ``E_n log p(x + n)``, ``n ~ N(0, reg I)``, of a Gaussian with this
    ``precision`` whose mean log-density at the raw rows is ``score``."""
    return score - 0.5 * reg * precision.diagonal().sum()


def smoothed_score(est, X, reg):
    """:func:`smoothed` for a fitted Gaussian estimator (or a one-component mixture)."""
    precision = est.precisions_[0] if hasattr(est, "precisions_") else est.precision_
    return smoothed(est.score(X), precision, reg)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=["mnist", "patches"], default="mnist")
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--nu", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--tol", type=float, default=1e-5, help="NCE/cNCE KKT tolerance")
    parser.add_argument("--reg", type=float, default=0.01)
    parser.add_argument(
        "--n-noise-draws", type=int, default=5, help="draws per sample of whole-image cNCE"
    )
    parser.add_argument("--precompute", action="store_true", help="store the NCE features")
    parser.add_argument("--skip-setup", action="store_true", help="no max_iter=1 set-up timing")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="run only the rows whose name contains one of these words "
        "(score matching always runs first: the times' reference)",
    )
    args = parser.parse_args()

    if args.data == "mnist":
        X = load_mnist().data
        perm = np.random.default_rng(0).permutation(len(X))
        X_train, X_test = X[perm[: args.n_train]], X[perm[8000 : 8000 + args.n_test]]
    else:
        P = extract_patches(
            load_natural_images().images, (28, 28), args.n_train + args.n_test, random_state=0
        )
        X_train, X_test = P[: args.n_train], P[args.n_train :]
    common = dict(reg=args.reg)
    sm = MaskedGaussianSM(**common).fit(X_train)
    nce_common = dict(
        common,
        max_iter=args.max_iter,
        tol=args.tol,
        random_state=0,
        precompute=True if args.precompute else "auto",
    )
    models = [
        ("MaskedGaussianSM", lambda: MaskedGaussianSM(**common)),
        ("MaskedGaussianMLE", lambda: MaskedGaussianMLE(**common)),
    ]
    for nu in args.nu:
        models.append(
            (
                f"NCE, Gaussian noise, nu={nu:g}",
                lambda nu=nu: MaskedGaussianNCE(noise="gaussian", noise_ratio=nu, **nce_common),
            )
        )
        models.append(
            (
                f"NCE, noise = fitted MaskedGaussianSM, nu={nu:g}",
                lambda nu=nu: MaskedGaussianNCE(noise=sm, noise_ratio=nu, **nce_common),
            )
        )
    models.append(("cNCE, single-pixel copies (1 draw)", lambda: MaskedGaussianCNCE(**nce_common)))
    models.append(
        (
            f"cNCE, whole-image copies ({args.n_noise_draws} draws)",
            lambda: MaskedGaussianCNCE(
                noise_support="image", n_noise_draws=args.n_noise_draws, **nce_common
            ),
        )
    )

    if args.only:
        models = models[:1] + [m for m in models[1:] if any(w in m[0] for w in args.only)]
    print(f"{args.data}: {len(X_train)} train, {len(X_test)} held out, reg={args.reg}\n")
    print(
        "| model | held-out nats/image | held-out, smoothed | fit s | / SM fit | iterations | KKT | set-up s | set-up / SM | notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    t_sm = None
    for name, make in models:
        setup = ""
        if "NCE" in name and not args.skip_setup:
            one = make().set_params(max_iter=1)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unconverged by design
                one.fit(X_train)
            t_one = time.perf_counter() - t0
            setup = f"{t_one:.1f} | {t_one / t_sm:.0f}x"
        est = make()
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X_train)
        elapsed = time.perf_counter() - t0
        setup = setup or " | "
        notes = "; ".join(sorted({type(w.message).__name__ for w in caught}))
        extra = []
        if hasattr(est, "accuracy_"):
            extra.append(f"accuracy {est.accuracy_:.3f}")
        if hasattr(est, "normalizer_gap_"):
            extra.append(f"normaliser gap {est.normalizer_gap_:.2f}")
        if hasattr(est, "noise_scale_"):
            extra.append(f"noise scale {est.noise_scale_:.3g}")
        t_sm = elapsed if t_sm is None else t_sm  # the first row is score matching
        print(
            f"| {name} | {est.score(X_test):.2f} | {smoothed_score(est, X_test, args.reg):.2f} "
            f"| {elapsed:.1f} | {elapsed / t_sm:.0f}x "
            f"| {est.n_iter_} | {est.kkt_residual_:.1e} | {setup} | "
            f"{', '.join(extra + ([notes] if notes else []))} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
