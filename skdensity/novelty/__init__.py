"""Novelty detection with a density: :class:`DensityOutlierDetector`."""

from ._density_outlier import DensityOutlierDetector

__all__ = ["DensityOutlierDetector"]
