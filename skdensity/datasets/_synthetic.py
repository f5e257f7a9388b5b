"""Samples of a known Gaussian Markov random field, for checking recovery."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ..linalg._cholesky import CholeskyFactor
from ..masks import grid_mask

__all__ = ["make_gmrf"]


def make_gmrf(
    n_samples=1000, image_shape=(16, 16), *, connectivity=8, coupling=0.5, random_state=None
):
    """Draw images from a random Gaussian Markov random field on a pixel grid.

    The precision has random couplings, uniform in ``[-coupling, coupling]``,
    between each pixel and its grid neighbours, and a diagonal that makes it
    strictly diagonally dominant (hence positive definite). Samples are drawn
    with its Cholesky factor, banded for all but small images, so a large
    image costs ``O(D w)`` per sample (``w`` the image width) and no dense
    ``D x D`` matrix is formed.
    The known precision lets a fit's recovery be measured.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images.
    image_shape : tuple of int, default=(16, 16)
        ``(height, width)`` or ``(height, width, channels)``; features are
        flattened in row-major order (see :func:`~skdensity.grid_mask`).
    connectivity : {4, 8}, default=8
        Neighbourhood of the precision's support (see :func:`~skdensity.grid_mask`).
    coupling : float, default=0.5
        Largest absolute off-diagonal precision entry before the diagonal is
        set; in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds the precision and the samples.

    Returns
    -------
    X : ndarray of shape (n_samples, height * width)
        The samples, mean zero.
    precision : scipy.sparse.csr_array of shape (height * width, height * width)
        The precision they were drawn from.

    Examples
    --------
    >>> from skdensity.datasets import make_gmrf
    >>> X, precision = make_gmrf(500, (8, 8), random_state=0)
    >>> X.shape, precision.shape, precision.nnz   # 64 + 2 * 210 neighbour pairs
    ((500, 64), (64, 64), 484)
    """
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if not isinstance(coupling, Real) or not 0 < coupling <= 1:
        raise ValueError(f"coupling must be a number in (0, 1], got {coupling!r}.")
    rng = check_random_state(random_state)
    mask = sp.triu(grid_mask(image_shape, connectivity, sparse=True), k=1).tocoo()
    D = mask.shape[0]
    weights = rng.uniform(-coupling, coupling, size=mask.nnz)
    off = sp.coo_array((weights, (mask.row, mask.col)), shape=(D, D))
    off = off + off.T
    diagonal = 1.1 * np.asarray(abs(off).sum(axis=1)).ravel() + 0.5
    precision = (off + sp.diags_array(diagonal)).tocsr()

    # With precision = U'U (or LL'), U^-1 z has covariance precision^-1.
    upper = sp.triu(precision).tocoo()
    factor = CholeskyFactor.of_pattern(upper.row, upper.col, upper.data, D)  # banded on grids
    Z = rng.standard_normal((n_samples, D))
    return factor.inverse_sqrt_rows(Z), precision
