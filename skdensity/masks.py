"""Sparsity patterns (masks) for Gaussian Markov random fields on pixel grids.

A mask is a symmetric boolean ``(n_features, n_features)`` matrix whose
diagonal is all ``True``: entry ``(i, j)`` says whether the precision matrix
may be non-zero there, i.e. whether pixels ``i`` and ``j`` are neighbours in
the graph of the Markov random field.
"""

import math

import numpy as np
import scipy.sparse as sp

__all__ = ["grid_mask", "check_mask"]

# Neighbour offsets (row, column) in one half-plane; the other half follows
# from symmetry.
_OFFSETS = {
    4: ((0, 1), (1, 0)),
    8: ((0, 1), (1, 0), (1, 1), (1, -1)),
}


def _check_image_shape(image_shape):
    """``(height, width, channels)`` from a pair or a triple of positive integers."""
    try:
        shape = tuple(int(s) for s in image_shape)
        exact = all(float(s) == int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels), "
            f"got {image_shape!r}."
        ) from None
    if len(shape) not in (2, 3) or min(shape) < 1 or not exact:
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels) of "
            f"positive integers, got {image_shape!r}."
        )
    return shape if len(shape) == 3 else (*shape, 1)


def resolve_image_shape(image_shape, n_features):
    """The image shape of ``n_features`` features, as given (a pair or a triple).

    ``None`` gives a square when ``n_features`` is a perfect square and a
    one-row signal ``(1, n_features)`` otherwise.
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        return (side, side) if side * side == n_features else (1, n_features)
    h, w, c = _check_image_shape(image_shape)
    if h * w * c != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} holds {h * w * c} values but X has "
            f"{n_features} features."
        )
    return tuple(int(s) for s in image_shape)


def neighbour_slices(height, width, dy, dx):
    """Index slices ``(rows, cols)`` of the pixels whose neighbour at offset
    ``(dy, dx)`` (``dy >= 0``) lies inside the image, and of those neighbours."""
    here = slice(0, height - dy), slice(max(0, -dx), width - max(0, dx))
    there = slice(dy, height), slice(max(0, dx), width - max(0, -dx))
    return here, there


def grid_mask(image_shape, connectivity=8, sparse=False):
    """Neighbourhood mask of a pixel grid, diagonal included.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)`` of a grayscale image or ``(height, width,
        channels)`` of a colour one. Features are numbered in row-major (C)
        order, as ``image.ravel()`` does, so a colour pixel's channels are
        consecutive (``X.reshape(n, height, width, channels)``); all channels
        of a pixel are linked to each other and to all channels of its
        neighbours.
    connectivity : {4, 8}, default=8
        4 links each pixel to its up, down, left and right neighbours; 8 adds
        the four diagonal neighbours.
    sparse : bool, default=False
        Return a ``scipy.sparse.csr_array`` instead of a dense array.

    Returns
    -------
    mask : ndarray or csr_array of bool, shape (h*w, h*w)
        Symmetric, with a ``True`` diagonal.

    Examples
    --------
    >>> from skdensity.masks import grid_mask
    >>> m = grid_mask((28, 28), connectivity=8)
    >>> m.shape, int(m.sum() - 784) // 2 + 784   # free precision entries
    ((784, 784), 3754)
    """
    h, w, c = _check_image_shape(image_shape)
    if connectivity not in _OFFSETS:
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}.")
    idx = np.arange(h * w).reshape(h, w)
    rows, cols = [idx.ravel()], [idx.ravel()]
    for dy, dx in _OFFSETS[connectivity]:
        # Pixel (y, x) links to (y + dy, x + dx) where both are in the image.
        here, there = neighbour_slices(h, w, dy, dx)
        src, dst = idx[here], idx[there]
        rows += [src.ravel(), dst.ravel()]
        cols += [dst.ravel(), src.ravel()]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    mask = sp.csr_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(h * w, h * w))
    if c > 1:  # every channel of a pixel with every channel of its neighbours
        mask = sp.csr_array(sp.kron(mask, np.ones((c, c), dtype=bool), format="csr"))
    return mask if sparse else mask.toarray()


def check_mask(mask, n_features):
    """Validate a user-given mask and return it as a sparse boolean array.

    Parameters
    ----------
    mask : array-like or sparse matrix of shape (n_features, n_features)
        Non-zero (or ``True``) entries mark where the precision may be
        non-zero.
    n_features : int
        Number of features of the data the mask is meant for.

    Returns
    -------
    mask : scipy.sparse.csr_array of bool, shape (n_features, n_features)
        With sorted indices and no stored ``False``; never densified, so
        masks of large images cost memory in their number of edges.

    Raises
    ------
    ValueError
        If the mask is not square, does not match ``n_features``, is not
        symmetric, has a ``False`` diagonal entry or holds NaN/inf.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.masks import check_mask
    >>> m = check_mask(np.eye(3), 3)
    >>> m.dtype, m.nnz
    (dtype('bool'), 3)
    """
    if not sp.issparse(mask):
        mask = np.asarray(mask)
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"mask must be a square 2-D matrix, got shape {mask.shape}.")
    if mask.shape[0] != n_features:
        raise ValueError(
            f"mask has shape {mask.shape} but the data have {n_features} "
            f"features: it must be ({n_features}, {n_features})."
        )
    values = mask.data if sp.issparse(mask) else mask
    if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
        raise ValueError("mask contains NaN or infinite values.")
    mask = sp.csr_array(mask != 0 if not sp.issparse(mask) else mask, dtype=bool, copy=True)
    mask.eliminate_zeros()
    mask.sum_duplicates()
    asymmetric = sp.coo_array(mask != mask.T)
    if asymmetric.nnz:
        k = np.lexsort((asymmetric.col, asymmetric.row))[0]
        i, j = int(asymmetric.row[k]), int(asymmetric.col[k])
        raise ValueError(
            f"mask must be symmetric: entry ({i}, {j}) is {bool(mask[i, j])} "
            f"but ({j}, {i}) is {bool(mask[j, i])}."
        )
    missing = np.flatnonzero(~mask.diagonal())
    if missing.size:
        raise ValueError(
            "mask must have a True diagonal (every pixel has its own precision "
            f"entry); {missing.size} diagonal entries are False, first at "
            f"index {missing[0]}."
        )
    return mask
