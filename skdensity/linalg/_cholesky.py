"""The Cholesky factor of a precision supported on a mask, banded or dense,
with everything the estimators do with it: solves, log-determinant, the
dense inverse and sampling."""

import numpy as np
import scipy.linalg as la

from ..utils._threads import single_threaded
from ._banded import (
    band_storage,
    banded_cholesky,
    banded_solver,
    narrow_band,
    upper_band_solve,
)

__all__ = ["CholeskyFactor"]


class CholeskyFactor:
    """Cholesky factor of a symmetric positive definite matrix ``A``.

    Narrowly banded patterns (grid masks) keep LAPACK's upper band of ``U``
    (``A = U'U``), at ``n b^2`` cost and without fill-in; others a dense lower
    ``L`` (``A = LL'``). Build one with :meth:`of_pattern`.

    Parameters
    ----------
    factor : ndarray
        The upper band of ``U`` (``banded``) or the dense lower ``L``.
    banded : bool
        Which of the two ``factor`` holds.
    """

    def __init__(self, factor, banded):
        self.factor = factor
        self.banded = banded

    @classmethod
    def of_pattern(cls, rows, cols, vals, n_features):
        """The factor of the symmetric matrix with upper-triangle entries
        ``vals`` at ``(rows, cols)``, or None if it is not positive definite."""
        u = int((cols - rows).max(initial=0))
        if narrow_band(n_features, u):
            ab = band_storage(rows, cols, vals, n_features, u)
            factor = banded_cholesky(ab, overwrite=True)
            return None if factor is None else cls(factor, banded=True)
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
        if self.banded:
            return banded_solver(self.factor)(v)
        return la.cho_solve((self.factor, True), v, check_finite=False)

    def log_det(self):
        """``log det A``."""
        diagonal = self.factor[-1] if self.banded else np.diag(self.factor)
        return 2.0 * np.log(diagonal).sum()

    def lower(self, fortran=False):
        """The dense lower triangle ``L`` with ``A = LL'``: C-ordered, or with
        ``fortran`` a new Fortran-ordered array that LAPACK may overwrite."""
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
        return out

    def inverse_sqrt_rows(self, Z):
        """The rows of ``Z`` (standard normal) mapped to ``N(0, A^{-1})``, in place.

        ``U^{-1} z`` with ``A = U'U`` (one triangular band solve for all rows,
        on ``Z.T``, which is ``Z``'s memory in Fortran order) or ``L^{-T} z``
        with ``A = LL'``; either has covariance ``A^{-1}``.
        """
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
