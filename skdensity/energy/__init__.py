"""Energy models: :class:`DeepEnergyModel`, trained by score matching.

- :mod:`._deep_energy`: the estimator;
- :mod:`._inference`: its float64 numpy math (log-density, score, Laplacian,
  Langevin sampling, annealed importance sampling);
- :mod:`._tf_objectives`: the TensorFlow objectives and training loop,
  imported only by ``fit``.
"""

from ._deep_energy import DeepEnergyModel

__all__ = ["DeepEnergyModel"]
