"""Banded symmetric matrices: grid masks are banded (bandwidth 29 for an
8-connected 28x28 grid in row-major order), so Cholesky factorisations of
precisions on them cost ``n b^2`` instead of ``n^3``: 0.6 ms against 5 ms at
784 pixels, and no fill-in.

Storage is LAPACK's upper banded form: ``ab[u + i - j, j] = A[i, j]`` for
``i <= j <= i + u``.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

_CONTROLLER = None


def single_threaded():
    """Context: BLAS/LAPACK on one thread.

    Band factorisations and triangular solves are
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


def on_two_threads(n_rows, step, work):
    """``work(worker, rows)`` for the row blocks ``rows`` of ``range(n_rows)``
    (``step`` rows each), alternating between two threads (``worker`` 0 and
    1), with single-threaded BLAS; returns each worker's list of results.

    numpy's element-wise products release the GIL, and the BLAS calls on a
    block are small (two BLAS threads under two of ours oversubscribed the 2
    cores). A single block runs inline.
    """
    def run(worker):
        return [work(worker, slice(start, min(start + step, n_rows)))
                for start in range(worker * step, n_rows, 2 * step)]

    with single_threaded():
        if n_rows <= step:
            return [run(0), []]
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(run, range(2)))


def narrow_band(n_features, bandwidth):
    """Band storage pays off for large, narrowly banded matrices only."""
    return n_features > 64 and bandwidth <= n_features // 8


def band_storage(rows, cols, vals, n_features, bandwidth):
    """Upper-triangle entries ``(rows <= cols)`` in upper banded storage,
    Fortran-ordered (LAPACK's order: no copy); repeated entries add up, as
    in a COO matrix (entry ``(r, c)`` at row ``bandwidth + r - c`` of column
    ``c``: one ``bincount``, 29 against 52 us for a 784-pixel grid)."""
    flat = np.bincount(bandwidth + rows - cols + (bandwidth + 1) * cols, weights=vals,
                       minlength=(bandwidth + 1) * n_features)
    return flat.reshape(n_features, bandwidth + 1).T


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


def banded_cholesky(ab, shift=0.0, overwrite=False):
    """Cholesky factor of ``A - shift I`` (banded), or None if not positive definite.

    With ``overwrite`` (and no shift) ``ab`` itself is factorised in place:
    the score matching Hessian's band is 4.3 MB at 28x28, and each fresh copy
    of it costs page faults (three copies were 3,400 faults per fit).
    """
    if overwrite and shift == 0.0:
        shifted = ab
    else:
        shifted = ab.copy()
        shifted[-1] -= shift
    try:
        with single_threaded():
            return la.cholesky_banded(shifted, lower=False, overwrite_ab=True,
                                      check_finite=False)
    except la.LinAlgError:
        return None


def shift_below_spectrum(ab, n_bisect=6):
    """A shift just below the smallest eigenvalue and the factor of ``A - shift I``.

    Each bisection step is a banded factorisation (0.2 ms at 784 pixels),
    each shift-invert Lanczos step one banded solve (~40 us): a closer
    shift is not worth many more steps. Measured on the unconstrained score
    matching optima of MNIST and natural patches, ARPACK needed 21 solves
    after 6 bisection steps as after 10, and 31-51 after 3.
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


def pattern_cholesky(rows, cols, vals, n_features):
    """Cholesky factor of the symmetric matrix with upper-triangle entries
    ``vals`` at ``(rows, cols)``, or None if it is not positive definite.

    Band storage when the pattern is narrowly banded (grid masks), dense
    otherwise. Returns ``(factor, banded)``: LAPACK's upper band of ``U``
    (``A = U'U``) or a dense lower ``L``.
    """
    u = int((cols - rows).max(initial=0))
    if narrow_band(n_features, u):
        factor = banded_cholesky(band_storage(rows, cols, vals, n_features, u), overwrite=True)
        return None if factor is None else (factor, True)
    A = np.zeros((n_features, n_features))
    A[rows, cols] = vals
    A[cols, rows] = vals
    try:
        return la.cholesky(A, lower=True), False
    except la.LinAlgError:
        return None


def lower_cholesky(A, rows, cols):
    """Dense lower Cholesky factor of a positive definite ``A`` whose upper
    triangle is supported on ``(rows, cols)``."""
    return _dense_lower(pattern_cholesky(rows, cols, A[rows, cols], A.shape[0]))


def _dense_lower(factor, fortran=False):
    """:func:`pattern_cholesky`'s factor as a dense lower triangle ``L``: C-ordered
    (or the dense factor itself), or with ``fortran`` a new Fortran-ordered
    array, which LAPACK overwrites in place without a copy."""
    band, banded = factor
    if not banded:
        return np.array(band, order="F") if fortran else band
    u, n = band.shape[0] - 1, band.shape[1]
    out = np.zeros((n, n))
    flat = out.ravel()
    for d in range(u + 1):  # the band of U, one strided diagonal at a time
        # U C-ordered (entry (i, i + d) at d + i (n + 1)) is L in Fortran
        # order; L C-ordered has (i + d, i) at d n + i (n + 1).
        start = d if fortran else d * n
        flat[start::n + 1][: n - d] = band[u - d, d:]
    return out.T if fortran else out


def log_det(factor):
    """``log det A`` from :func:`pattern_cholesky`'s factor."""
    factor, banded = factor
    return 2.0 * np.log(factor[-1] if banded else np.diag(factor)).sum()


def cholesky_inverse(factor):
    """Dense ``A^{-1}`` (C-ordered, symmetric) from :func:`pattern_cholesky`'s factor.

    LAPACK's ``potri`` costs half a solve against the identity (measured
    10 ms against 20 ms at 784 pixels; banded solves against the identity
    are slower still, 32 ms, being matrix-vector work). It fills the lower
    triangle of ``L`` (zero above), so ``inv + inv.T`` with the diagonal
    halved is the whole inverse, C-ordered (0.6 ms at 744 pixels against 6.9
    ms for ``tril`` and a transposed copy). C order matters: products with it
    read rows (dots along the columns of a Fortran-ordered inverse were 3x
    slower).
    """
    # potri overwrites a Fortran-ordered L in place (a C-ordered L cost a
    # copy: 10 against 12.5 ms).
    inv, info = la.lapack.dpotri(_dense_lower(factor, fortran=True), lower=1, overwrite_c=1)
    if info != 0:
        raise la.LinAlgError(f"potri failed with info={info}")
    out = inv + inv.T  # the upper triangle of inv is L's: zero
    out.flat[:: out.shape[0] + 1] *= 0.5
    return out


def inverse_sqrt_rows(factor, Z):
    """The rows of ``Z`` (standard normal) mapped to ``N(0, A^{-1})``, in place,
    from :func:`pattern_cholesky`'s factor of ``A``.

    ``U^{-1} z`` with ``A = U'U`` (one triangular band solve for all rows:
    LAPACK's ``tbtrs`` on ``Z.T``, which is ``Z``'s memory in Fortran order)
    or ``L^{-T} z`` with ``A = LL'``; either has covariance ``A^{-1}``.
    """
    factor, banded = factor
    if banded:
        with single_threaded():  # matrix-vector work per row: threads do not help
            out, info = la.lapack.dtbtrs(factor, Z.T, uplo="U", trans="N", overwrite_b=1)
        if info != 0:
            raise la.LinAlgError(f"tbtrs failed with info={info}")
        return out.T
    return la.solve_triangular(factor, Z.T, lower=True, trans="T", overwrite_b=True,
                               check_finite=False).T


def cholesky_solver(factor):
    """``v -> A^{-1} v`` from :func:`pattern_cholesky`'s result."""
    factor, banded = factor
    if banded:
        return banded_solver(factor)
    return lambda v: la.cho_solve((factor, True), v, check_finite=False)


def banded_solver(factor):
    """``v -> A^{-1} v`` (vector or columns) from an upper band Cholesky factor.

    LAPACK's ``pbtrs`` called directly: the solvers call it tens of
    thousands of times per fit, and scipy's wrapper with its checks took
    about twice as long as the solve (measured 49 us against 27 us at 784
    pixels, bandwidth 29).
    """
    def solve(v):
        x, info = la.lapack.dpbtrs(factor, v, lower=0)
        if info != 0:
            raise ValueError(f"pbtrs failed with info={info}")
        return x

    return solve


def spd_solver(A):
    """``v -> A^{-1} v`` for a sparse symmetric positive definite ``A``.

    A banded Cholesky factorisation when ``A`` is narrowly banded as given
    (the score matching Hessian of a grid mask is, in the natural order of
    the free entries: bandwidth 142 for 3,754 entries at 28x28, 8-connected;
    its solves take 0.38 ms against 0.58 ms with SuperLU), otherwise (or if
    the factorisation fails) SuperLU, which raises ``RuntimeError`` on an
    exactly singular matrix.
    """
    from scipy.sparse.linalg import splu

    ab = upper_band(A)
    factor = banded_cholesky(ab, overwrite=True) if ab is not None else None
    if factor is not None:
        return banded_solver(factor)
    return splu(sp.csc_array(A), permc_spec="MMD_AT_PLUS_A").solve
