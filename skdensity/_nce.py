r"""Noise-contrastive objectives, independent of the model.

Both losses take the model's log-ratios and return the loss and its gradient
with respect to them, so any model (a masked Gaussian here, an energy model
elsewhere) chains its own parameter gradient onto them. Everything stays in
log space: :math:`\log(1 + e^{\mp G})` is computed as ``logaddexp(0, ∓G)``
and its derivative as a logistic sigmoid, never as an exponentiated ratio
(the course report's infinite gradients came from forming
:math:`p_n/p_\theta` in 784 dimensions).
"""

import numpy as np
from scipy.special import expit

__all__ = ["nce_loss", "cnce_loss", "nce_accuracy"]


def nce_loss(g_data, g_noise, noise_ratio):
    r"""Noise-contrastive estimation loss (Gutmann & Hyvärinen 2012).

    With :math:`G(u) = \log\tilde p_\theta(u) - \log\nu - \log p_n(u)`,

    .. math:: J = \overline{\log(1+e^{-G(x)})} + \nu\,\overline{\log(1+e^{G(y)})}

    over data :math:`x` and :math:`\nu` times as many noise samples :math:`y`.

    Parameters
    ----------
    g_data : ndarray of shape (n_data,)
        Log-ratios ``G`` at the data.
    g_noise : ndarray of shape (n_noise,)
        Log-ratios ``G`` at the noise samples.
    noise_ratio : float
        ``nu``, the number of noise samples per data sample.

    Returns
    -------
    loss : float
    grad_data : ndarray of shape (n_data,)
        ``dJ / dG`` at the data.
    grad_noise : ndarray of shape (n_noise,)
        ``dJ / dG`` at the noise.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity._nce import nce_loss
    >>> loss, _, _ = nce_loss(np.zeros(3), np.zeros(6), 2.0)
    >>> bool(np.isclose(loss, 3 * np.log(2)))
    True
    """
    n_d, n_n = len(g_data), len(g_noise)
    loss = np.logaddexp(0.0, -g_data).mean() + noise_ratio * np.logaddexp(0.0, g_noise).mean()
    return loss, -expit(-g_data) / n_d, noise_ratio * expit(g_noise) / n_n


def cnce_loss(g):
    r"""Conditional NCE loss (Ceylan & Gutmann 2018) for a symmetric noise.

    With :math:`G = \log\tilde p_\theta(x) - \log\tilde p_\theta(y)` for data
    :math:`x` and its noisy copies :math:`y`, :math:`J = \overline{\log(1 +
    e^{-G})}`. The normaliser cancels in :math:`G`; the loss tends to
    :math:`\log 2` as the noise vanishes.

    Parameters
    ----------
    g : ndarray of shape (n_pairs,)

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_pairs,)
        ``dJ / dG``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity._nce import cnce_loss
    >>> bool(np.isclose(cnce_loss(np.zeros(4))[0], np.log(2)))
    True
    """
    return np.logaddexp(0.0, -g).mean(), -expit(-g) / len(g)


def nce_accuracy(g_data, g_noise):
    """Fraction of data and noise samples the model classifies correctly."""
    return float(((g_data > 0).sum() + (g_noise < 0).sum()) / (len(g_data) + len(g_noise)))
