"""Validation of what the solvers' public functions are given: a second-moment
matrix and a mask of the same size."""

import numpy as np

from ..linalg import MaskPairs, as_pairs
from ..masks import check_mask

__all__ = ["check_moments_and_mask", "unit_scale"]

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
    if isinstance(mask, MaskPairs):
        if mask.n_features != S.shape[0]:
            raise ValueError(f"The mask has {mask.n_features} features but S has {S.shape[0]}.")
        return S, mask
    try:
        mask = check_mask(mask, S.shape[0])
    except ValueError as exc:
        raise ValueError(str(exc).replace("the data have", "S has")) from None
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
