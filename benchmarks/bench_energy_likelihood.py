"""Does the energy model beat the Gaussian on natural patches, with a normaliser one can trust?

On 16x16 patches of the embedded photographs (40,000 to train, 10,000 held
out), every model a density of all 256 pixels:

* the floor: one pass over the data (its mean);
* ``GaussianDensity``, the full Gaussian;
* scikit-learn's ``GaussianMixture`` (full covariances), what a user would
  otherwise pick for a non-Gaussian density of patches;
* ``DeepEnergyModel`` with the report's model (sigmoid filters, AIS), PCA-
  whitened to 64 components inside the estimator;
* ``DeepEnergyModel`` with the recipe (orthogonal ``-log cosh`` filters,
  16 non-negative experts, exact ``log Z``), same whitening.

Reported: held-out mean log-likelihood per pixel, its gain over the
Gaussian, fit time and its ratio to the floor, and for the energy models
``log Z`` as fitted beside forward AIS and reverse AIS (from exact samples
where ``log Z`` is exact, Langevin chains otherwise).

Run: ``python3 benchmarks/bench_energy_likelihood.py [--gmm-components 4]``
"""

import argparse
import time
import warnings

from sklearn.mixture import GaussianMixture

from skdensity import DeepEnergyModel, GaussianDensity
from skdensity.datasets import extract_patches, load_natural_images


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=16)
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--gmm-components", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=20)
    args = parser.parse_args()

    side, k = args.side, args.n_components
    D = side * side
    P = extract_patches(load_natural_images().images, (side, side), 50000, random_state=0)
    train, held_out = P[:40000], P[40000:]

    floor = min(_timed(lambda: train.mean(axis=0))[1] for _ in range(3))
    energy = dict(n_components=k, n_hidden=k, max_epochs=args.max_epochs, random_state=0)
    models = {
        "Gaussian (GaussianDensity)": GaussianDensity(),
        f"GaussianMixture ({args.gmm_components}, full)": GaussianMixture(
            args.gmm_components, covariance_type="full", random_state=0
        ),
        "DeepEnergyModel, report's model": DeepEnergyModel(**energy),
        "DeepEnergyModel, recipe": DeepEnergyModel(
            **energy,
            n_experts=16,
            first_layer="orthogonal",
            nonlinearity="logcosh",
            nonnegative_weights=True,
            learning_rate=1e-2,
        ),
    }
    rows = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # AIS's warnings are read from the table
            _, seconds = _timed(lambda model=model: model.fit(train))
        rows[name] = (model.score_samples(held_out).mean() / D, seconds)
        print(f"fitted {name} in {seconds:.1f} s", flush=True)

    gaussian = rows["Gaussian (GaussianDensity)"][0]
    print(
        f"\n{side}x{side} patches, 40,000 train / 10,000 held out; floor (one pass) {floor:.4f} s\n"
    )
    print(
        "| model | held-out nat/pixel | gain over Gaussian | fit s | x floor | log Z as fitted | forward AIS | reverse AIS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (per_pixel, seconds) in rows.items():
        model = models[name]
        normaliser = ["-", "-", "-"]
        if isinstance(model, DeepEnergyModel):
            interval = model.log_partition_interval(n_temperatures=1000, random_state=0)
            how = model.normalizer_
            normaliser = [
                f"{model.log_partition_:.2f} ({how})",
                f"{interval.lower.value:.2f} +- {interval.lower.std:.2f}",
                f"{interval.upper.value:.2f} +- {interval.upper.std:.2f}",
            ]
        print(
            f"| {name} | {per_pixel:.4f} | {per_pixel - gaussian:+.4f} | {seconds:.1f} "
            f"| {seconds / floor:.0f} | " + " | ".join(normaliser) + " |",
            flush=True,
        )


def _timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


if __name__ == "__main__":
    main()
