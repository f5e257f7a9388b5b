import numpy as np
import pytest

from skdensity.datasets import load_mnist
from skdensity.masks import grid_mask


def random_gmrf(image_shape, connectivity=8, seed=0):
    """A random positive definite precision supported on a grid mask."""
    rng = np.random.default_rng(seed)
    mask = grid_mask(image_shape, connectivity)
    D = mask.shape[0]
    A = np.triu(rng.uniform(-0.5, 0.5, size=(D, D)) * mask, 1)
    P = A + A.T
    P += np.diag(np.abs(P).sum(1) * 1.1 + 0.5)  # strictly diagonally dominant
    return P, mask


def sample_gmrf(P, n, seed=0):
    L = np.linalg.cholesky(P)
    z = np.random.default_rng(seed).standard_normal((n, P.shape[0]))
    return np.linalg.solve(L.T, z.T).T


@pytest.fixture(scope="session")
def mnist_split():
    X = load_mnist().data
    perm = np.random.default_rng(0).permutation(len(X))
    return X[perm[:8000]], X[perm[8000:]]
