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
With ``--contrastive`` it compares instead NCE (noise: the score matching
fit, at ``--nce-sides``) and conditional NCE (single-pixel copies;
whole-image copies with 5 draws at ``--image-sides``) with score matching,
up to 128 x 128.

Run: ``python3 benchmarks/bench_masked_fits.py [--n 2000] [--recovery]``
     ``python3 benchmarks/bench_masked_fits.py --contrastive [--nce-sides 28 64] [--image-sides 28]``
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
    import json, resource, sys, time, warnings
    import numpy as np
    import scipy.sparse as sp
    from sklearn.covariance import LedoitWolf
    from skdensity import (MaskedGaussianCNCE, MaskedGaussianMLE, MaskedGaussianNCE,
                           MaskedGaussianSM)
    from skdensity.datasets import make_gmrf

    name, side, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X, P = make_gmrf(n, (side, side), random_state=0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    make = {
        "SM": lambda: MaskedGaussianSM(reg=0),
        "MLE": lambda: MaskedGaussianMLE(reg=0),
        "LedoitWolf": LedoitWolf,
        # NCE's noise is the score matching fit, sparse like the model: its
        # fit is part of the time
        "NCE": lambda: MaskedGaussianNCE(
            reg=0, noise=MaskedGaussianSM(reg=0).fit(X), random_state=0),
        "cNCE": lambda: MaskedGaussianCNCE(reg=0, random_state=0),
        "cNCE-image": lambda: MaskedGaussianCNCE(
            reg=0, noise_support="image", random_state=0),
    }[name]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = make().fit(X)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    precision = est.precision_
    if sp.issparse(precision):
        error = sp.linalg.norm(precision - P) / sp.linalg.norm(P)
    else:
        error = np.linalg.norm(precision - P.toarray()) / sp.linalg.norm(P)
    warned = sorted({type(w.message).__name__ for w in caught})
    print(json.dumps(dict(seconds=seconds, peak_gib=peak / 2**20, data_gib=X.nbytes / 2**30,
                          before_gib=base / 2**20, error=float(error),
                          accuracy=getattr(est, "accuracy_", None), warnings=warned)))
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
    parser.add_argument(
        "--contrastive",
        type=int,
        nargs="*",
        default=None,
        help="instead: NCE and cNCE at these sides (default 28 64 128)",
    )
    parser.add_argument(
        "--image-sides",
        type=int,
        nargs="*",
        default=[28],
        help="sides at which --contrastive also runs whole-image cNCE (5 draws)",
    )
    parser.add_argument(
        "--nce-sides",
        type=int,
        nargs="*",
        default=[28, 64],
        help="sides at which --contrastive runs NCE (11 minutes at 64 x 64)",
    )
    args = parser.parse_args()
    if args.contrastive is not None:
        sides = args.contrastive or [28, 64, 128]
        contrastive(sides, args.nce_sides, args.image_sides, args.n)
        return

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


def contrastive(sides, nce_sides, image_sides, n):
    """NCE (noise: the score matching fit) and cNCE against score matching:
    time, peak memory, error, and the classification accuracy."""
    print(
        f"{'side':>5}{'D':>7}  {'estimator':<12}{'s':>8}{'x SM':>7}{'peak GiB':>10}{'error':>9}"
        f"{'accuracy':>10}  warnings"
    )
    for side in sides:
        names = (
            ["SM"]
            + (["NCE"] if side in nce_sides else [])
            + ["cNCE"]
            + (["cNCE-image"] if side in image_sides else [])
        )
        sm_seconds = None
        for name in names:
            r = run_child(name, side, n)
            sm_seconds = sm_seconds or r["seconds"]
            accuracy = "" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
            print(
                f"{side:>5}{side * side:>7}  {name:<12}{r['seconds']:>8.2f}"
                f"{r['seconds'] / sm_seconds:>7.0f}{r['peak_gib']:>10.2f}{r['error']:>9.3f}"
                f"{accuracy:>10}  {', '.join(r['warnings'])}",
                flush=True,
            )


if __name__ == "__main__":
    main()
