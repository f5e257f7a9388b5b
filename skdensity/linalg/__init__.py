"""Numerical kernels of the masked Gaussian family.

Not part of the estimators' API: solvers built on these kernels live beside
their estimators in :mod:`skdensity.gaussian`. Everything here works in the
coordinates of :class:`MaskPairs`, the free entries of a masked symmetric
matrix.

- :mod:`._mask_pairs`: the coordinates, and products on the mask;
- :mod:`._banded`, :mod:`._cholesky`: banded storage and the Cholesky factor
  (banded or dense) with its solves, log-determinant, inverse and sampler;
- :mod:`._block_tridiagonal`: the inverse on a banded pattern and its
  derivative, without a dense inverse;
- :mod:`._eigen`: extreme eigenpairs;
- :mod:`._lbfgs`: preconditioned L-BFGS;
- :mod:`._pd_projection`: projection onto ``Lambda >= eps I`` in a quadratic
  metric, by its low-rank dual;
- :mod:`._projected_lbfgs`: projected quasi-Newton under the same constraint;
- :mod:`._schwarz`: additive Schwarz preconditioners on the free entries.
"""

from ._banded import band_storage, banded_cholesky, banded_solver, spd_solver, upper_band
from ._block_tridiagonal import (
    BlockTridiagonal,
    SelectedInverse,
    block_layout,
    selected_inverse,
    selected_inverse_derivative,
)
from ._cholesky import CholeskyFactor
from ._eigen import bottom_eig, sqrtm_rows, top_eigenvalue
from ._lbfgs import LBFGSMemory, LBFGSResult, minimize_lbfgs
from ._mask_pairs import MaskPairs, as_pairs
from ._pd_projection import ProjectionResult, project_pd, projection_certificate
from ._projected_lbfgs import PDMinimizeResult, minimize_pd
from ._schwarz import SchwarzBlocks

__all__ = [
    "BlockTridiagonal",
    "CholeskyFactor",
    "LBFGSMemory",
    "LBFGSResult",
    "MaskPairs",
    "PDMinimizeResult",
    "ProjectionResult",
    "SchwarzBlocks",
    "SelectedInverse",
    "as_pairs",
    "band_storage",
    "banded_cholesky",
    "banded_solver",
    "block_layout",
    "bottom_eig",
    "minimize_lbfgs",
    "minimize_pd",
    "project_pd",
    "projection_certificate",
    "selected_inverse",
    "selected_inverse_derivative",
    "spd_solver",
    "sqrtm_rows",
    "top_eigenvalue",
    "upper_band",
]
