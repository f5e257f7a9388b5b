"""Random draws: fast normals from a ``RandomState``, and samples from any
density estimator whatever its ``sample`` convention."""

import inspect

import numpy as np

__all__ = ["sample_from", "standard_normal"]


def standard_normal(rng, shape):
    """Standard normal draws, determined by the ``RandomState`` ``rng``.

    Drawn by numpy's ``Generator`` (ziggurat), seeded from ``rng``: faster
    than ``RandomState``'s polar method for the large noise sets of NCE, and
    just as reproducible.
    """
    return np.random.default_rng(rng.randint(2**31 - 1)).standard_normal(shape)


def sample_from(estimator, n_samples, random_state=None):
    """``estimator.sample`` as an array, whatever the estimator's convention.

    Passes ``random_state`` when the method accepts one (``KernelDensity``,
    ours) and drops the labels ``GaussianMixture.sample`` returns.
    """
    kwargs = {}
    if "random_state" in inspect.signature(estimator.sample).parameters:
        kwargs["random_state"] = random_state
    X = estimator.sample(n_samples, **kwargs)
    if isinstance(X, tuple):
        X = X[0]
    return np.asarray(X, dtype=float)
