"""The statistics and the sampling of masked Gaussians on large images.

On samples of a known 8-connected field (``make_gmrf``), for square images
of side 28, 64, 128 and 256 at a fixed number of images, times:

* the floor: one pass over the data (its column means);
* ``GridMoments``: the covariance on the 5x5 window score matching needs,
  by shifted products;
* the dense covariance ``Xc' Xc`` a dense fit forms (skipped where its
  D x D array passes ``--dense-limit`` features: 16,384 features need 2 GB);
* drawing the images: the blocked band solve against LAPACK's one column
  at a time (``tbtrs``, on a tenth of the columns and scaled up).

Times are ratios to the floor measured in the same run, and the growth
exponent of each over D is fitted across sizes (1 is linear).

Run: ``python3 benchmarks/bench_large_images.py [--n 2000] [--dense-limit 5000]``
"""

import argparse
import time

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from skdensity.datasets import make_gmrf
from skdensity.gaussian._grid_moments import GridMoments
from skdensity.linalg._banded import band_storage, upper_band_solve


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--sides", type=int, nargs="+", default=[28, 64, 128, 256])
    parser.add_argument("--dense-limit", type=int, default=5000)
    args = parser.parse_args()

    rows = []
    print(
        f"{'side':>5}{'D':>8}{'floor s':>9}{'moments s':>11}{'x floor':>9}"
        f"{'dense cov s':>13}{'blocked draw s':>16}{'tbtrs draw s':>14}"
    )
    for side in args.sides:
        X, precision = make_gmrf(args.n, (side, side), random_state=0)
        D = side * side
        floor = best_of(lambda X=X: X.mean(axis=0))
        moments = best_of(lambda X=X, side=side: GridMoments.of(X, (side, side), 2), repeat=1)
        if D <= args.dense_limit:
            Xc = X - X.mean(axis=0)
            dense = best_of(lambda Xc=Xc: Xc.T @ Xc, repeat=1)
        else:
            dense = np.nan
        upper = sp.triu(precision).tocoo()
        u = int((upper.col - upper.row).max())
        factor = la.cholesky_banded(band_storage(upper.row, upper.col, upper.data, D, u))
        Z = np.random.default_rng(0).standard_normal((D, args.n))
        blocked = best_of(lambda Z=Z, f=factor: upper_band_solve(f, Z), repeat=1)
        tenth = max(args.n // 10, 1)
        lapack = best_of(
            lambda Z=Z[:, :tenth], f=factor: la.lapack.dtbtrs(f, Z, uplo="U", trans="N"), repeat=1
        ) * (args.n / tenth)
        rows.append((D, floor, moments, dense, blocked, lapack))
        print(
            f"{side:>5}{D:>8}{floor:>9.3f}{moments:>11.2f}{moments / floor:>9.1f}"
            f"{dense:>13.2f}{blocked:>16.2f}{lapack:>14.2f}"
        )
    D, floor, moments, dense, blocked, lapack = map(np.array, zip(*rows))
    for name, t in (("moments", moments), ("blocked draw", blocked), ("tbtrs draw", lapack)):
        slope = np.polyfit(np.log(D), np.log(t), 1)[0]
        print(f"growth exponent over D, {name}: {slope:.2f}")


if __name__ == "__main__":
    main()
