"""Banded symmetric matrices in LAPACK's upper band storage.

Grid masks are banded (bandwidth = image width + 1 for an 8-connected grid in
row-major order), so factorisations of precisions on them cost ``n b^2``
instead of ``n^3``, with no fill-in. Storage: ``ab[u + i - j, j] = A[i, j]``
for ``i <= j <= i + u``, Fortran-ordered so that LAPACK works in place.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from ..utils._threads import single_threaded

__all__ = [
    "band_storage",
    "banded_cholesky",
    "banded_solver",
    "upper_band_solve",
    "narrow_band",
    "shift_below_spectrum",
    "spd_solver",
    "upper_band",
]


def narrow_band(n_features, bandwidth):
    """Band storage pays off for large, narrowly banded matrices only."""
    return n_features > 64 and bandwidth <= n_features // 8


def band_storage(rows, cols, vals, n_features, bandwidth):
    """Upper-triangle entries ``(rows <= cols)`` in upper band storage,
    Fortran-ordered; repeated entries add up, as in a COO matrix (one
    ``bincount`` into the band)."""
    flat = np.bincount(
        bandwidth + rows - cols + (bandwidth + 1) * cols,
        weights=vals,
        minlength=(bandwidth + 1) * n_features,
    )
    return flat.reshape(n_features, bandwidth + 1).T


def upper_band(A):
    """``A`` (sparse, symmetric) in upper band storage, or None when the
    band is too wide (or the matrix too small) to beat a dense factorisation."""
    A = sp.coo_array(A)
    upper = A.row <= A.col
    rows, cols = A.row[upper], A.col[upper]
    u = int((cols - rows).max(initial=0))
    if not narrow_band(A.shape[0], u):
        return None
    return band_storage(rows, cols, A.data[upper], A.shape[0], u)


def banded_cholesky(ab, shift=0.0, overwrite=False):
    """Upper band Cholesky factor of ``A - shift I``, or None if that is not
    positive definite. With ``overwrite`` (and no shift) ``ab`` itself is
    factorised in place: large bands are costly to copy."""
    if overwrite and shift == 0.0:
        shifted = ab
    else:
        shifted = ab.copy()
        shifted[-1] -= shift
    try:
        with single_threaded():
            return la.cholesky_banded(shifted, lower=False, overwrite_ab=True, check_finite=False)
    except la.LinAlgError:
        return None


def banded_solver(factor):
    """``v -> A^{-1} v`` (vector or columns) from an upper band Cholesky factor.

    LAPACK's ``pbtrs`` is called directly: solvers call it tens of thousands
    of times per fit, and scipy's checking wrapper costs as much as the solve.
    """

    def solve(v):
        x, info = la.lapack.dpbtrs(factor, v, lower=0)
        if info != 0:
            raise ValueError(f"pbtrs failed with info={info}")
        return x

    return solve


def shift_below_spectrum(ab, n_bisect=6):
    """A shift just below the smallest eigenvalue of the banded ``A`` and the
    factor of ``A - shift I``, or ``(None, None)``.

    A factorisation that succeeds proves the shift below the spectrum
    (Sylvester's inertia); bisection between Gershgorin's bound and zero
    brings it close. A few steps suffice: shift-invert Lanczos converges fast
    from any shift near the bottom, and each step is a factorisation.
    """
    factor = banded_cholesky(ab, 0.0)
    if factor is not None:
        return 0.0, factor
    # Gershgorin: lambda_min >= min_i (a_ii - sum_j |a_ij|); both triangles.
    u = ab.shape[0] - 1
    radius = np.zeros(ab.shape[1])
    for d in range(1, u + 1):
        band = np.abs(ab[u - d, d:])  # entries (i, i + d)
        radius[:-d] += band
        radius[d:] += band
    lo = float(np.min(ab[-1] - radius))
    lo -= 1e-8 * max(1.0, abs(lo))
    factor = banded_cholesky(ab, lo)
    if factor is None:  # rounding at a singular bound: give up on the shift
        return None, None
    hi = 0.0  # not positive definite at zero
    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        f = banded_cholesky(ab, mid)
        if f is None:
            hi = mid
        else:
            lo, factor = mid, f
    return lo, factor


def spd_solver(A):
    """``v -> A^{-1} v`` for a sparse symmetric positive definite ``A``.

    A banded Cholesky factorisation when ``A`` is narrowly banded as given,
    otherwise (or if that factorisation fails) SuperLU, which raises
    ``RuntimeError`` on an exactly singular matrix.
    """
    from scipy.sparse.linalg import splu

    ab = upper_band(A)
    factor = banded_cholesky(ab, overwrite=True) if ab is not None else None
    if factor is not None:
        return banded_solver(factor)
    return splu(sp.csc_array(A), permc_spec="MMD_AT_PLUS_A").solve


def _dense_block(ab, rows, cols):
    """The dense block ``U[rows, cols]`` of the upper band ``ab``."""
    u = ab.shape[0] - 1
    i = np.arange(rows.start, rows.stop)[:, None]
    j = np.arange(cols.start, cols.stop)[None, :]
    inside = (j >= i) & (j - i <= u)
    block = np.zeros((i.shape[0], j.shape[1]))
    ii, jj = np.broadcast_arrays(i, j)
    block[inside] = ab[u + ii[inside] - jj[inside], jj[inside]]
    return block


def upper_band_solve(ab, Z):
    """``U^{-1} Z`` for the upper band factor ``ab`` and the columns of ``Z``.

    Backward substitution over row blocks as wide as the band, so that each
    block couples only to the next and the work is matrix-matrix (``trsm``
    and ``gemm``) instead of one band sweep per column: many columns (the
    samples of a large image) then run at BLAS-3 speed.
    """
    u, n = ab.shape[0] - 1, ab.shape[1]
    size = max(u, 64)
    X = np.array(Z, dtype=np.float64, order="C", copy=True)
    starts = list(range(0, n, size))
    for start in reversed(starts):
        rows = slice(start, min(start + size, n))
        if rows.stop < n:
            after = slice(rows.stop, min(rows.stop + size, n))
            X[rows] -= _dense_block(ab, rows, after) @ X[after]
        X[rows] = la.solve_triangular(
            _dense_block(ab, rows, rows), X[rows], lower=False, check_finite=False
        )
    return X
