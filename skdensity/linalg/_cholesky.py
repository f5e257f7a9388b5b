"""The Cholesky factor of a precision supported on a mask, banded or dense,
with everything the estimators do with it: solves, log-determinant, the
dense inverse and sampling."""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ..utils._memory import check_allocation
from ..utils._threads import single_threaded
from ._banded import (
    band_storage,
    banded_cholesky,
    banded_solver,
    narrow_band,
    upper_band_solve,
)

__all__ = ["CholeskyFactor"]

# Patterns without a narrow band in their own order are reordered only
# beyond this size: below it a dense factor is as fast and simpler.
_DENSE_MAX_FEATURES = 2048


class CholeskyFactor:
    """Cholesky factor of a symmetric positive definite matrix ``A``.

    Narrowly banded patterns (grid masks) keep LAPACK's upper band of ``U``
    (``A = U'U``), at ``n b^2`` cost and without fill-in; other patterns are
    first reordered by reverse Cuthill-McKee, a fill-reducing (profile)
    ordering, and factored in band form if that makes them narrow (``perm``:
    the factor is of ``A[perm][:, perm]``); the rest get a dense lower ``L``
    (``A = LL'``). Build one with :meth:`of_pattern`.

    Parameters
    ----------
    factor : ndarray
        The upper band of ``U`` (``banded``) or the dense lower ``L``.
    banded : bool
        Which of the two ``factor`` holds.
    perm : ndarray of int, default=None
        The order of the features in the factor (banded only).
    """

    def __init__(self, factor, banded, perm=None):
        self.factor = factor
        self.banded = banded
        self.perm = perm

    @classmethod
    def of_pattern(cls, rows, cols, vals, n_features):
        """The factor of the symmetric matrix with upper-triangle entries
        ``vals`` at ``(rows, cols)``, or None if it is not positive definite.
        A factor that would not fit in memory is a clear error, before it is
        allocated."""
        perm = None
        u = int((cols - rows).max(initial=0))
        if not narrow_band(n_features, u) and n_features > _DENSE_MAX_FEATURES:
            pattern = sp.csr_array(
                (np.ones(2 * rows.size), (np.r_[rows, cols], np.r_[cols, rows])),
                shape=(n_features, n_features),
            )
            perm = reverse_cuthill_mckee(pattern, symmetric_mode=True).astype(np.int64)
            position = np.empty_like(perm)
            position[perm] = np.arange(n_features)
            rows, cols = (
                np.minimum(position[rows], position[cols]),
                np.maximum(position[rows], position[cols]),
            )
            u = int((cols - rows).max(initial=0))
        if narrow_band(n_features, u):
            check_allocation(
                2 * 8 * (u + 1) * n_features,
                f"The Cholesky factor of a precision on {n_features} features with bandwidth {u}",
                "use smaller images or a mask whose neighbours are close in the features' order.",
            )
            ab = band_storage(rows, cols, vals, n_features, u)
            factor = banded_cholesky(ab, overwrite=True)
            return None if factor is None else cls(factor, banded=True, perm=perm)
        check_allocation(
            2 * 8 * n_features**2,
            f"The Cholesky factor of a precision on {n_features} features whose mask "
            f"has no narrow band in any order found (bandwidth {u})",
            "use a mask whose neighbours are close in the features' order (a grid mask).",
        )
        A = np.zeros((n_features, n_features))
        A[rows, cols] = vals
        A[cols, rows] = vals
        try:
            return cls(la.cholesky(A, lower=True), banded=False)
        except la.LinAlgError:
            return None

    @property
    def n_features(self):
        return self.factor.shape[1]

    def solve(self, v):
        """``A^{-1} v`` for a vector or the columns of a matrix."""
        if not self.banded:
            return la.cho_solve((self.factor, True), v, check_finite=False)
        if self.perm is None:
            return banded_solver(self.factor)(v)
        out = np.empty_like(v, dtype=float)
        out[self.perm] = banded_solver(self.factor)(v[self.perm])
        return out

    def log_det(self):
        """``log det A``."""
        diagonal = self.factor[-1] if self.banded else np.diag(self.factor)
        return 2.0 * np.log(diagonal).sum()

    def lower(self, fortran=False):
        """The dense lower triangle ``L`` with ``A = LL'``: C-ordered, or with
        ``fortran`` a new Fortran-ordered array that LAPACK may overwrite
        (of ``A[perm][:, perm]`` for a reordered factor)."""
        if not self.banded:
            return np.array(self.factor, order="F") if fortran else self.factor
        band = self.factor
        u, n = band.shape[0] - 1, band.shape[1]
        out = np.zeros((n, n))
        flat = out.ravel()
        for d in range(u + 1):  # the band of U, one strided diagonal at a time
            # U C-ordered (entry (i, i + d) at d + i (n + 1)) is L in Fortran
            # order; L C-ordered has (i + d, i) at d n + i (n + 1).
            start = d if fortran else d * n
            flat[start :: n + 1][: n - d] = band[u - d, d:]
        return out.T if fortran else out

    def inverse(self):
        """Dense ``A^{-1}``, C-ordered and symmetric.

        LAPACK's ``potri`` fills one triangle from ``L`` at half the cost of a
        solve against the identity; C order matters to the row-wise products
        that read the inverse.
        """
        inv, info = la.lapack.dpotri(self.lower(fortran=True), lower=1, overwrite_c=1)
        if info != 0:
            raise la.LinAlgError(f"potri failed with info={info}")
        out = inv + inv.T  # the upper triangle of inv is L's: zero
        out.flat[:: out.shape[0] + 1] *= 0.5
        if self.perm is not None:  # A^{-1}[perm][:, perm] is the factor's inverse
            position = np.empty_like(self.perm)
            position[self.perm] = np.arange(self.perm.size)
            out = out[np.ix_(position, position)]
        return out

    def inverse_sqrt_rows(self, Z):
        """The rows of ``Z`` (standard normal) mapped to ``N(0, A^{-1})``, in place.

        ``U^{-1} z`` with ``A = U'U`` (one triangular band solve for all rows,
        on ``Z.T``, which is ``Z``'s memory in Fortran order) or ``L^{-T} z``
        with ``A = LL'``; either has covariance ``A^{-1}``.
        """
        if self.perm is not None:  # x[perm] = U^{-1} z has covariance A^{-1}
            Z[:, self.perm] = CholeskyFactor(self.factor, banded=True).inverse_sqrt_rows(Z)
            return Z
        if self.banded and Z.shape[0] >= 256 and self.factor.shape[0] > 64:
            # many rows and a wide band (large images): matrix-matrix blocks
            Z[:] = upper_band_solve(self.factor, Z.T).T
            return Z
        if self.banded:
            with single_threaded():  # matrix-vector work per row: threads do not help
                out, info = la.lapack.dtbtrs(self.factor, Z.T, uplo="U", trans="N", overwrite_b=1)
            if info != 0:
                raise la.LinAlgError(f"tbtrs failed with info={info}")
            return out.T
        return la.solve_triangular(
            self.factor, Z.T, lower=True, trans="T", overwrite_b=True, check_finite=False
        ).T
