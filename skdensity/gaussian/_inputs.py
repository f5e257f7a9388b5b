"""Validation of what the solvers' public functions are given: a second-moment
matrix and a mask of the same size."""

from contextlib import contextmanager

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from ..linalg import MaskPairs, as_pairs
from ..linalg._mask_pairs import matrix_entries
from ..masks import check_mask

__all__ = [
    "check_finite_covariance",
    "check_moments_and_mask",
    "check_variance_range",
    "diagonal",
    "read_entries",
    "factorisation_errors_as_value_errors",
    "numerically_definite",
    "unit_scale",
]

# Second moments whose mean variance lies in this range are solved as they
# are; outside it, in units where it is about 1.
_ORDINARY = (2.0**-20, 2.0**20)
# Beyond these, a precision (1 / variance) or its square would not be a
# float64 number.
_REPRESENTABLE = (1e-280, 1e280)


def check_moments_and_mask(S, mask):
    """``S`` as float64 (dense, or a canonical ``csr_array``) and ``mask`` as
    MaskPairs, or a ValueError in the caller's terms.

    ``S`` must be a finite, square, symmetric matrix; ``mask`` a symmetric
    boolean pattern of the same size with a True diagonal (see
    :func:`~skdensity.masks.check_mask`). A sparse ``S`` holds the second
    moments where the solver reads them (a window around the mask); only
    its diagonal can be checked for definiteness, the solver's own
    factorisations check the rest. A MaskPairs (the solvers' own
    coordinates) is taken as already checked.
    """
    if sp.issparse(S):
        S = sp.csr_array(S, dtype=np.float64)
        S.sum_duplicates()
        values = S.data
    else:
        S = np.asarray(S, dtype=np.float64)
        values = S
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"S must be a square, non-empty 2-D matrix, got shape {S.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError("S contains NaN or infinite values.")
    _check_symmetric(S)
    if isinstance(mask, MaskPairs):  # a solver's own call: S was checked by its caller
        if mask.n_features != S.shape[0]:
            raise ValueError(f"The mask has {mask.n_features} features but S has {S.shape[0]}.")
        return S, mask
    try:
        mask = check_mask(mask, S.shape[0])
    except ValueError as exc:
        raise ValueError(str(exc).replace("the data have", "S has")) from None
    zero = np.flatnonzero(~(diagonal(S) > 0))
    if zero.size:
        raise ValueError(
            f"S is not positive definite: feature(s) {zero[:5].tolist()} have zero "
            "variance. Use reg > 0."
        )
    check_variance_range(S)
    if not sp.issparse(S) and not numerically_definite(S / unit_scale(S)):
        raise ValueError(
            "S is not positive definite (some features are constant or collinear): "
            "add a variance floor, S + reg * I with reg > 0."
        )
    return S, as_pairs(mask)


def _check_symmetric(S):
    if sp.issparse(S):
        gap = abs(S - S.T)
        asymmetry = gap.max() if gap.nnz else 0.0
        largest = abs(S).max() if S.nnz else 0.0
    else:
        gap = np.abs(S - S.T)
        asymmetry, largest = gap.max(), np.abs(S).max()
    if asymmetry > 1e-10 * max(largest, np.finfo(float).tiny):
        if sp.issparse(S):
            gap = sp.coo_array(gap)
            k = np.argmax(gap.data)
            i, j = int(gap.row[k]), int(gap.col[k])
        else:
            i, j = np.unravel_index(np.argmax(gap), S.shape)
        raise ValueError(
            f"S must be symmetric: S[{i}, {j}] = {S[i, j]:.6g} but S[{j}, {i}] = {S[j, i]:.6g}."
        )


def read_entries(S, rows, cols, where):
    """``S[rows[k], cols[k]]`` for every ``k``; a clear error where a sparse
    ``S`` does not hold an entry the solver reads (``where`` names them)."""
    if not sp.issparse(S):
        return S[rows, cols]
    values, found = matrix_entries(S, rows, cols)
    if not found.all():
        k = np.flatnonzero(~found)[0]
        raise ValueError(
            f"The sparse S holds no entry at ({rows[k]}, {cols[k]}); the solver reads S {where}."
        )
    return values


def diagonal(S):
    """The diagonal of a dense or sparse matrix."""
    return S.diagonal() if sp.issparse(S) else np.diag(S)


def unit_scale(S):
    """A power of two ``c2`` near the mean variance of ``S``, or 1 for
    ordinary scales: the solvers work on ``S / c2`` and scale the precision
    back by ``1 / c2``, so that data in any units fit alike.

    Dividing by a power of two is exact, so the rescaled problem is the
    same problem; a clear error says when the precision itself would not
    be representable.
    """
    mean_variance = float(np.mean(diagonal(S)))
    if not mean_variance > 0:
        raise ValueError("S has no positive variance: it is not a covariance matrix.")
    if not _REPRESENTABLE[0] <= mean_variance <= _REPRESENTABLE[1]:
        raise ValueError(
            f"The data's variances are about {mean_variance:.3g}, outside the range "
            f"skdensity supports ({_REPRESENTABLE[0]:g} to {_REPRESENTABLE[1]:g}: beyond "
            "it the precision matrix and its products leave float64). Rescale the data "
            "(e.g. divide by its standard deviation) before fitting."
        )
    if _ORDINARY[0] <= mean_variance <= _ORDINARY[1]:
        return 1.0
    return 2.0 ** round(np.log2(mean_variance))


def numerically_definite(S):
    """Whether every feature keeps a share of its variance that rounding
    cannot erase once the others are known.

    The squared Cholesky pivots over the diagonal are ``1 - R^2`` of each
    feature regressed on the previous ones: a collinear or constant feature
    leaves rounding there (and a factorisation may still succeed on it),
    so a share below ``1000 D`` unit roundoffs counts as singular.
    """
    variances = np.diag(S)
    if not np.all(variances > 0):
        return False
    try:
        L = la.cholesky(S, lower=True)
    except la.LinAlgError:
        return False
    unexplained = np.diag(L) ** 2 / variances
    return bool(unexplained.min() > 1e3 * len(S) * np.finfo(float).eps)


def check_variance_range(S, reg=None):
    """A clear error when the variances span more decades than float64 can
    resolve in one precision matrix (most often constant features beside
    large ones, with a floor too small for the data's scale)."""
    variances = diagonal(S)
    largest, smallest = variances.max(), variances.min()
    if smallest <= 0 or largest / smallest <= 1.0 / (1e3 * S.shape[0] * np.finfo(float).eps):
        return  # zero variances are the singularity checks' to report
    floor = "reg" if reg is not None else "the variance floor added to S"
    raise ValueError(
        f"The variances range from {smallest:.3g} to {largest:.3g}, more than float64 "
        "can resolve in one precision matrix (constant features beside large ones?): "
        f"raise {floor} to about {1e-6 * largest:.3g} (1e-6 of the largest variance) "
        "or standardise the features."
    )


@contextmanager
def factorisation_errors_as_value_errors():
    """Context: a factorisation that fails inside a solver (LAPACK's
    "leading minor is not positive definite") becomes one error in the
    user's terms. S passed the definiteness checks, so what failed is a
    system built from it whose conditioning is about the square of S's."""
    try:
        yield
    except la.LinAlgError:
        raise ValueError(
            "S is too ill-conditioned for the solver in float64 (one of its "
            "factorisations failed): raise the variance floor (reg) or standardise "
            "the features."
        ) from None


def check_finite_covariance(covariance):
    """A clear error when the data's second moments overflowed."""
    if not np.all(np.isfinite(covariance)):
        raise ValueError(
            "The covariance of X is not finite: values are too large (overflow). Rescale the data."
        )
