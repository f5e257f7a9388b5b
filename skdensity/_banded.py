"""Banded symmetric matrices: grid masks are banded (bandwidth 29 for an
8-connected 28x28 grid in row-major order), so Cholesky factorisations of
precisions on them cost ``n b^2`` instead of ``n^3``: 0.6 ms against 5 ms at
784 pixels, and no fill-in.

Storage is LAPACK's upper banded form: ``ab[u + i - j, j] = A[i, j]`` for
``i <= j <= i + u``.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

_CONTROLLER = None


def single_threaded():
    """Context: BLAS/LAPACK on one thread.

    Band factorisations and the block solves of the selected inverse are
    small calls on which OpenBLAS's threading costs more than it saves
    (measured on 2 cores: ``cholesky_banded`` of a 784-pixel grid precision
    9 ms with two threads after large products had run, 0.36 ms with one).
    A module-level controller makes entering this context cost about 10 us.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def narrow_band(n_features, bandwidth):
    """Band storage pays off for large, narrowly banded matrices only."""
    return n_features > 64 and bandwidth <= n_features // 8


def band_storage(rows, cols, vals, n_features, bandwidth):
    """Upper-triangle entries ``(rows <= cols)`` in upper banded storage."""
    ab = np.zeros((bandwidth + 1, n_features))
    ab[bandwidth + rows - cols, cols] = vals
    return ab


def upper_band(A):
    """``A`` (sparse, symmetric) in upper banded storage, or None when the
    band is too wide (or the matrix too small) to beat a dense factorisation."""
    A = sp.coo_array(A)
    upper = A.row <= A.col
    rows, cols = A.row[upper], A.col[upper]
    u = int((cols - rows).max(initial=0))
    if not narrow_band(A.shape[0], u):
        return None
    return band_storage(rows, cols, A.data[upper], A.shape[0], u)


def banded_cholesky(ab, shift=0.0):
    """Cholesky factor of ``A - shift I`` (banded), or None if not positive definite."""
    shifted = ab.copy()
    shifted[-1] -= shift
    try:
        with single_threaded():
            return la.cholesky_banded(shifted, lower=False, check_finite=False)
    except la.LinAlgError:
        return None


def shift_below_spectrum(ab, n_bisect=10):
    """A shift just below the smallest eigenvalue and the factor of ``A - shift I``."""
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


def selected_inverse(factor):
    """Entries of ``A^{-1}`` inside the band, from ``A``'s banded Cholesky factor.

    Takahashi's recurrence in blocks of the bandwidth ``b``: the factor
    ``U`` (``A = U'U``) is then block bidiagonal, and the diagonal and
    first off-diagonal blocks of ``Z = A^{-1}``, which hold its band, follow
    from the last block up:
    ``Z[J, J+1] = -U[J, J]^{-1} U[J, J+1] Z[J+1, J+1]`` and
    ``Z[J, J] = U[J, J]^{-1} (U[J, J]^{-T} - U[J, J+1] Z[J+1, J])``.
    Cost ``n b^2`` (about 1 ms at 784 pixels) instead of a dense inverse's
    ``n^3`` (19 ms). Returns a dense array exact on both block diagonals
    (which contain the band) and zero elsewhere.
    """
    u = factor.shape[0] - 1
    n = factor.shape[1]
    U = np.zeros((n, n))
    for d in range(u + 1):
        U[np.arange(n - d), np.arange(d, n)] = factor[u - d, d:]
    k = max(u, 48)  # blocks no narrower than the band; wider ones amortise the calls
    starts = list(range(0, n, k))
    Z = np.zeros((n, n))
    def solve(A, B, trans="N"):  # inputs are finite by construction
        return la.solve_triangular(A, B, trans=trans, check_finite=False)

    with single_threaded():
        _block_takahashi(U, Z, starts, k, n, solve)
    return Z


def _block_takahashi(U, Z, starts, k, n, solve):
    for s in reversed(starts):
        J = slice(s, min(s + k, n))
        Ujj = U[J, J]
        inv_t = solve(Ujj, np.eye(J.stop - J.start), trans="T")  # U_JJ^{-T}
        if J.stop < n:
            K = slice(J.stop, min(J.stop + k, n))
            Zjk = -solve(Ujj, U[J, K] @ Z[K, K])
            Z[J, K] = Zjk
            Z[K, J] = Zjk.T
            Z[J, J] = solve(Ujj, inv_t - U[J, K] @ Zjk.T)
        else:
            Z[J, J] = solve(Ujj, inv_t)
        Z[J, J] = 0.5 * (Z[J, J] + Z[J, J].T)
