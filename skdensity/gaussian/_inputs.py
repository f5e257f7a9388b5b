"""Validation of what the solvers' public functions are given: a second-moment
matrix and a mask of the same size."""

from contextlib import contextmanager

import numpy as np
import scipy.linalg as la

from ..linalg import MaskPairs, as_pairs
from ..masks import check_mask

__all__ = [
    "check_finite_covariance",
    "check_moments_and_mask",
    "check_variance_range",
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
    """``S`` as a float64 array and ``mask`` as MaskPairs, or a ValueError in
    the caller's terms.

    ``S`` must be a finite, square, symmetric matrix; ``mask`` a symmetric
    boolean pattern of the same size with a True diagonal (see
    :func:`~skdensity.masks.check_mask`). A MaskPairs (the solvers' own
    coordinates) is taken as already checked.
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"S must be a square, non-empty 2-D matrix, got shape {S.shape}.")
    if not np.all(np.isfinite(S)):
        raise ValueError("S contains NaN or infinite values.")
    asymmetry = np.abs(S - S.T).max()
    if asymmetry > 1e-10 * max(np.abs(S).max(), np.finfo(float).tiny):
        i, j = np.unravel_index(np.argmax(np.abs(S - S.T)), S.shape)
        raise ValueError(
            f"S must be symmetric: S[{i}, {j}] = {S[i, j]:.6g} but S[{j}, {i}] = {S[j, i]:.6g}."
        )
    if isinstance(mask, MaskPairs):  # a solver's own call: S was checked by its caller
        if mask.n_features != S.shape[0]:
            raise ValueError(f"The mask has {mask.n_features} features but S has {S.shape[0]}.")
        return S, mask
    try:
        mask = check_mask(mask, S.shape[0])
    except ValueError as exc:
        raise ValueError(str(exc).replace("the data have", "S has")) from None
    zero = np.flatnonzero(~(np.diag(S) > 0))
    if zero.size:
        raise ValueError(
            f"S is not positive definite: feature(s) {zero[:5].tolist()} have zero "
            "variance. Use reg > 0."
        )
    check_variance_range(S)
    if not numerically_definite(S / unit_scale(S)):
        raise ValueError(
            "S is not positive definite (some features are constant or collinear): "
            "add a variance floor, S + reg * I with reg > 0."
        )
    return S, as_pairs(mask)


def unit_scale(S):
    """A power of two ``c2`` near the mean variance of ``S``, or 1 for
    ordinary scales: the solvers work on ``S / c2`` and scale the precision
    back by ``1 / c2``, so that data in any units fit alike.

    Dividing by a power of two is exact, so the rescaled problem is the
    same problem; a clear error says when the precision itself would not
    be representable.
    """
    mean_variance = float(np.mean(np.diag(S)))
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
    diagonal = np.diag(S)
    if not np.all(diagonal > 0):
        return False
    try:
        L = la.cholesky(S, lower=True)
    except la.LinAlgError:
        return False
    unexplained = np.diag(L) ** 2 / diagonal
    return bool(unexplained.min() > 1e3 * len(S) * np.finfo(float).eps)


def check_variance_range(S, reg=None):
    """A clear error when the variances span more decades than float64 can
    resolve in one precision matrix (most often constant features beside
    large ones, with a floor too small for the data's scale)."""
    diagonal = np.diag(S)
    largest, smallest = diagonal.max(), diagonal.min()
    if smallest <= 0 or largest / smallest <= 1.0 / (1e3 * len(S) * np.finfo(float).eps):
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
