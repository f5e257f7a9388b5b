"""Throughput of the energy model's score matching objectives.

Measures, in one run and on the same batch: the analytic exact score
matching loss with its parameter gradients against an automatic
differentiation baseline that forms the Hessian diagonal with
``batch_jacobian``; denoising and sliced score matching; one training epoch
on natural 28x28 patches; AIS time and standard error; peak memory. Runs on
a GPU when TensorFlow sees one (same command) and reports the device;
``--devices`` trains the epoch data-parallel on several (``/gpu:0 /gpu:1``).

Run: ``python3 benchmarks/bench_energy.py [--n-patches 50000] [--devices ...] [--train-batch 100]``
"""

import argparse
import resource
import time

import numpy as np

from skdensity import DeepEnergyModel
from skdensity.datasets import extract_patches, load_natural_images
from skdensity.energy._inference import EnergyParams, annealed_importance_sampling
from skdensity.energy._tf_objectives import dsm_loss, load_tensorflow, sm_loss, ssm_loss


def timed(fn, repeat):
    fn()  # trace / warm up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--n-patches", type=int, default=50000)
    parser.add_argument(
        "--devices", nargs="+", default=None, help="train the epoch data-parallel on these"
    )
    parser.add_argument("--train-batch", type=int, default=100, help="the epoch's minibatch")
    args = parser.parse_args()
    tf = load_tensorflow()
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"TensorFlow {tf.__version__} on {device}\n")

    D, H = 784, args.hidden
    rng = np.random.default_rng(0)
    X = tf.constant(
        extract_patches(load_natural_images().images, (28, 28), args.batch, random_state=0),
        tf.float32,
    )
    params = [
        tf.Variable(rng.normal(scale=1 / np.sqrt(D), size=(H, D)).astype("float32")),
        tf.Variable(np.zeros(H, "float32")),
        tf.Variable(rng.normal(scale=1 / np.sqrt(H), size=(H, H)).astype("float32")),
        tf.Variable(np.zeros(H, "float32")),
        tf.Variable(np.zeros(D, "float32")),
    ]
    sigma = tf.constant(1.0)
    noise = tf.constant(rng.normal(size=X.shape).astype("float32"))

    def with_grads(loss_fn):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = loss_fn()
            return loss, tape.gradient(loss, params)

        return step

    def log_p(Z):
        V, a, W, c, b = params
        g = tf.sigmoid(tf.matmul(Z, V, transpose_b=True) + a)
        return (
            -0.5 * tf.reduce_sum(Z * Z, 1)
            + tf.linalg.matvec(Z, b)
            + tf.reduce_sum(tf.nn.softplus(tf.matmul(g, W, transpose_b=True) + c), 1)
        )

    def autodiff_sm():
        with tf.GradientTape() as outer:
            outer.watch(X)
            with tf.GradientTape() as inner:
                inner.watch(X)
                lp = log_p(X)
            psi = inner.gradient(lp, X)
        hess = outer.batch_jacobian(psi, X)
        return tf.reduce_mean(0.5 * tf.reduce_sum(psi * psi, 1) + tf.linalg.trace(hess))

    rows = {
        "exact SM, analytic Laplacian": with_grads(lambda: sm_loss(tf, X, params, sigma)),
        "exact SM, autodiff batch_jacobian (baseline)": with_grads(autodiff_sm),
        "denoising SM": with_grads(lambda: dsm_loss(tf, X, params, sigma, noise, tf.constant(0.1))),
        "sliced SM (variance-reduced)": with_grads(lambda: ssm_loss(tf, X, params, sigma, noise)),
    }
    a, b = (
        rows["exact SM, analytic Laplacian"]()[0],
        rows["exact SM, autodiff batch_jacobian (baseline)"]()[0],
    )
    print(f"analytic vs autodiff loss on the batch: {float(a):.6g} vs {float(b):.6g}\n")
    print(f"| loss + parameter gradients, batch {args.batch}, D={D}, H=K={H} | samples/s |")
    print("|---|---|")
    rates = {}
    for name, fn in rows.items():
        repeat = 3 if "baseline" in name else 50
        rates[name] = args.batch / timed(fn, repeat)
        print(f"| {name} | {rates[name]:,.0f} |", flush=True)
    ratio = (
        rates["exact SM, analytic Laplacian"]
        / rates["exact SM, autodiff batch_jacobian (baseline)"]
    )
    print(f"\nanalytic / autodiff throughput: {ratio:.0f}x\n")

    P = extract_patches(load_natural_images().images, (28, 28), args.n_patches, random_state=1)
    P = (P - P.mean(0)) / P.std()
    dem = DeepEnergyModel(
        n_hidden=H,
        n_experts=H,
        max_epochs=1,
        validation_fraction=0.0,
        n_ais_chains=100,
        n_ais_temperatures=1000,
        batch_size=args.train_batch,
        devices=args.devices,
        random_state=0,
    )
    t0 = time.perf_counter()
    dem.fit(P)
    where = f" on {', '.join(args.devices)}" if args.devices else ""
    print(
        f"one epoch on {args.n_patches} patches{where} (batch {args.train_batch}) + AIS: "
        f"{time.perf_counter() - t0:.1f} s"
    )
    p = EnergyParams(
        dem.filters_,
        dem.hidden_bias_,
        dem.expert_weights_,
        dem.expert_bias_,
        dem.visible_bias_,
        dem.sigma,
    )
    t0 = time.perf_counter()
    logz, se, _ = annealed_importance_sampling(
        p, n_chains=100, n_temperatures=1000, rng=np.random.default_rng(0)
    )
    print(
        f"AIS, 100 chains x 1000 temperatures: {time.perf_counter() - t0:.1f} s, "
        f"log Z = {logz:.2f} +- {se:.3f}"
    )
    print(
        f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
