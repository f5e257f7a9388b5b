"""Whole masked fits on large images: time, peak memory and recovery.

On samples of a known 8-connected field (``make_gmrf``, drawn with its
banded Cholesky factor), for square images of side 28, 64, 128 and 256 at a
fixed number of images (fewer images than pixels from 64 up, ``reg=0``):

* the floor: one pass over the data (its column means);
* ``MaskedGaussianSM(reg=0).fit`` and ``MaskedGaussianMLE(reg=0).fit``,
  each in a fresh process, with that process's peak resident memory;
* what a user would pick instead: scikit-learn's ``LedoitWolf`` (a dense
  covariance; only where its D x D arrays fit, up to ``--dense-limit``);
* the relative Frobenius error of the precision against the truth.

Times are ratios to the floor measured in the same run; growth exponents
over D are fitted across sizes (1 is linear). With ``--recovery`` it also
prints the error of both fits at 64 x 64 as the number of images grows.

Run: ``python3 benchmarks/bench_masked_fits.py [--n 2000] [--recovery]``
"""

import argparse
import json
import subprocess
import sys
import textwrap

import numpy as np
from bench_large_images import best_of  # same folder: run as a script

from skdensity.datasets import make_gmrf

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    import scipy.sparse as sp
    from sklearn.covariance import LedoitWolf
    from skdensity import MaskedGaussianMLE, MaskedGaussianSM
    from skdensity.datasets import make_gmrf

    name, side, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X, P = make_gmrf(n, (side, side), random_state=0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    est = {"SM": MaskedGaussianSM(reg=0), "MLE": MaskedGaussianMLE(reg=0),
           "LedoitWolf": LedoitWolf()}[name]
    t0 = time.perf_counter()
    est.fit(X)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    precision = est.precision_
    if sp.issparse(precision):
        error = sp.linalg.norm(precision - P) / sp.linalg.norm(P)
    else:
        error = np.linalg.norm(precision - P.toarray()) / sp.linalg.norm(P)
    print(json.dumps(dict(seconds=seconds, peak_gib=peak / 2**20, data_gib=X.nbytes / 2**30,
                          before_gib=base / 2**20, error=float(error))))
    """
)


def run_child(name, side, n):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(side), str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor_seconds(side, n):
    X, _ = make_gmrf(n, (side, side), random_state=0)
    return best_of(lambda: X.mean(axis=0))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--sides", type=int, nargs="+", default=[28, 64, 128, 256])
    parser.add_argument("--dense-limit", type=int, default=4096)
    parser.add_argument("--recovery", action="store_true")
    args = parser.parse_args()

    print(
        f"{'side':>5}{'D':>7}{'floor s':>9}{'SM s':>8}{'x floor':>9}{'MLE s':>8}{'x floor':>9}"
        f"{'LedoitWolf s':>14}{'data GiB':>10}{'SM peak':>9}{'MLE peak':>10}"
        f"{'SM err':>8}{'MLE err':>9}"
    )
    rows = []
    for side in args.sides:
        D = side * side
        floor = floor_seconds(side, args.n)
        sm = run_child("SM", side, args.n)
        mle = run_child("MLE", side, args.n)
        lw = run_child("LedoitWolf", side, args.n)["seconds"] if D <= args.dense_limit else np.nan
        rows.append((D, sm["seconds"], mle["seconds"], sm["peak_gib"], mle["peak_gib"]))
        print(
            f"{side:>5}{D:>7}{floor:>9.4f}{sm['seconds']:>8.2f}{sm['seconds'] / floor:>9.0f}"
            f"{mle['seconds']:>8.2f}{mle['seconds'] / floor:>9.0f}{lw:>14.2f}"
            f"{sm['data_gib']:>10.3f}{sm['peak_gib']:>9.2f}{mle['peak_gib']:>10.2f}"
            f"{sm['error']:>8.3f}{mle['error']:>9.3f}",
            flush=True,
        )
    D, sm_t, mle_t, sm_m, mle_m = map(np.array, zip(*rows))
    big = D >= 64 * 64  # the exponent of the sizes where the fit dominates start-up
    for name, values in (
        ("SM time", sm_t),
        ("MLE time", mle_t),
        ("SM peak", sm_m),
        ("MLE peak", mle_m),
    ):
        slope = np.polyfit(np.log(D[big]), np.log(values[big]), 1)[0]
        print(f"growth exponent over D from 64x64 up, {name}: {slope:.2f}")
    if args.recovery:
        print("\nrecovery at 64 x 64: relative Frobenius error of the precision")
        for n in (500, 2000, 8000):
            sm, mle = run_child("SM", 64, n), run_child("MLE", 64, n)
            print(f"n={n:>5}  SM {sm['error']:.4f}  MLE {mle['error']:.4f}", flush=True)


if __name__ == "__main__":
    main()
