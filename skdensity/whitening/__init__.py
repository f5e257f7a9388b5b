"""Whitening as a density, and densities of transformed data scored in the
original space.

- :mod:`._zca`: :class:`ZCAWhitener` and :func:`zca_whitening`;
- :mod:`._transformed`: :class:`TransformedDensity` and
  :func:`log_abs_det_jacobian`.
"""

from ._transformed import TransformedDensity, log_abs_det_jacobian
from ._zca import ZCAWhitener, zca_whitening

__all__ = ["TransformedDensity", "ZCAWhitener", "log_abs_det_jacobian", "zca_whitening"]
