"""The statistics a masked fit keeps: the covariance on the mask's two-hop
window (all its solvers read), from an in-memory array or, chunk by chunk
and merged exactly, from a Dask array on a cluster."""

import numpy as np
import scipy.sparse as sp

from ._grid_moments import GridMoments
from ._moments import (
    Moments,
    SparseMoments,
    data_top_eigenvalue,
    operator_top_eigenvalue,
    symmetric_csr,
)

__all__ = ["dask_top_eigenvalue", "is_dask_array", "window_moments", "dask_window_moments"]

# Masks other than grids: up to this many features, and when the window holds
# more than 1/64 of all pairs, one BLAS product of the data computes the
# window faster than column products.
DENSE_PRODUCT_MAX_FEATURES = 2048


def window_moments(X, structure, assume_centered):
    """:class:`SparseMoments` of the rows of ``X`` on the two-hop window of
    ``structure.mask``: shifted products of the images on grid masks (the 5x5
    window), column products (or one dense product) on other masks."""
    if structure.grid:
        grid = GridMoments.of(X, structure.image_shape, 2, assume_centered)
        return SparseMoments(grid.n_samples, grid.mean.ravel(), grid.to_sparse())
    D = X.shape[1]
    window = sp.csr_array(structure.mask @ structure.mask)
    if D <= DENSE_PRODUCT_MAX_FEATURES and window.nnz * 64 > D * D:
        dense = Moments.of(X, assume_centered)
        upper = sp.coo_array(sp.triu(window))
        values = dense.covariance[upper.row, upper.col]
        covariance = symmetric_csr(upper.row, upper.col, values, D)
        return SparseMoments(dense.n_samples, dense.mean, covariance)
    return SparseMoments.of_pattern(X, window, assume_centered)


def is_dask_array(X):
    """Whether ``X`` is a Dask array (checked without importing Dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def dask_window_moments(X, structure, assume_centered):
    """:func:`window_moments` of a Dask array: each block of rows on the
    workers, the blocks' moments merged exactly in a tree; only ``O(D k)``
    numbers per block travel."""
    import dask

    blocks = X.rechunk({1: -1}).to_delayed().ravel()  # whole rows per block
    parts = [dask.delayed(_block_moments)(b, structure, assume_centered) for b in blocks]
    while len(parts) > 1:
        pairs = [dask.delayed(_merge)(a, b) for a, b in zip(parts[::2], parts[1::2])]
        parts = pairs + parts[len(pairs) * 2 :]
    return parts[0].compute()


def _block_moments(block, structure, assume_centered):
    return window_moments(np.asarray(block, dtype=np.float64), structure, assume_centered)


def _merge(a, b):
    return a.merge(b)


def dask_top_eigenvalue(X, mean):
    """:func:`~skdensity.gaussian._moments.data_top_eigenvalue` of a Dask
    array: each Lanczos step is one distributed pass (two products) over the
    data, held in the workers' memory meanwhile."""
    import dask

    n, D = X.shape
    if D <= 64:
        return data_top_eigenvalue(np.asarray(X.compute(), dtype=np.float64), mean)
    X = X.rechunk({1: -1}).persist()  # whole rows: few tasks per step

    def covariance_times(v):
        r = X @ v - mean @ v
        out, total = dask.compute(X.T @ r, r.sum())
        return (np.asarray(out) - mean * float(total)) / n

    return operator_top_eigenvalue(covariance_times, D)


def check_dask_array(estimator, X, *, reset, min_samples=1):
    """The checks ``validate_data`` makes, for a Dask array left where it is:
    two dimensions of known size, numbers, at least ``min_samples`` rows and
    the width seen before; sets ``n_features_in_`` when ``reset``."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D array, got a {X.ndim}-D Dask array.")
    if any(np.isnan(size) for size in X.shape):
        raise ValueError(
            "The Dask array's number of rows is unknown; call X.compute_chunk_sizes() first."
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold numbers, got a Dask array of dtype {X.dtype}.")
    n, width = X.shape
    if n < min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={X.shape}) while a minimum of "
            f"{min_samples} is required."
        )
    if reset:
        estimator.n_features_in_ = width
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif width != estimator.n_features_in_:
        raise ValueError(
            f"X has {width} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return X.astype(np.float64)
