r"""Conditional NCE's pairs when each noisy copy moves one pixel.

On a Gaussian Markov random field the log-ratio of a sample :math:`x` and
its copy :math:`x + t e_p` with pixel :math:`p` moved by :math:`t` involves
one row of the precision only,

.. math:: G = \log\tilde p(x) - \log\tilde p(x + t e_p)
   = t\,(\Lambda x)_p + \tfrac12 t^2 \Lambda_{pp} ,

so one image-wide draw of steps (one per pixel) gives ``D`` pairs for the
cost of one product :math:`\Lambda x`, where a copy that moves every pixel
gives one pair: the objective has ``D`` times more pairs per unit of work,
which is what lets its sampling noise stay small when the free entries
number in the hundreds of thousands.
"""

from dataclasses import dataclass

import numpy as np

from ..utils._threads import on_two_threads

__all__ = ["PixelContrasts"]


@dataclass(frozen=True)
class ContrastValue:
    """The mean cNCE loss over all pairs, its gradient in the free entries,
    and the fraction of pairs where the data point scores above its copy."""

    loss: float
    gradient: np.ndarray
    accuracy: float


class PixelContrasts:
    """Every single-pixel pair of the samples ``X`` (centred) with the steps
    ``steps[k]`` (arrays shaped like ``X``), each used with its mirror image
    ``-steps[k]``: ``2 * len(steps) * X.size`` pairs.

    Evaluated in row blocks on two threads, so memory beyond the data and
    the steps is a few blocks.
    """

    def __init__(self, pairs, X, steps, *, block=None):
        self.pairs, self.X, self.steps = pairs, X, steps
        # blocks of 2**16 numbers or 16 rows: a few arrays of them stay in
        # cache, and each block's sparse product and sums are worth a call
        self.block = block or max(16, 2**16 // X.shape[1])
        self.n_pairs = 2 * len(steps) * X.size
        self._diagonal = np.flatnonzero(pairs.is_diag)  # in pixel order

    def __call__(self, theta):
        """The loss, gradient and accuracy at the free entries ``theta``."""
        pairs, X = self.pairs, self.X
        Lam = pairs.to_sparse(theta)
        half_diag = 0.5 * theta[self._diagonal]

        # per thread: loss, count of G > 0, dJ/dtheta by Lambda x, dJ/dLambda_pp
        totals = [[0.0, 0, np.zeros(pairs.n_pairs), np.zeros(X.shape[1])] for _ in range(2)]

        def work(worker, rows):
            with np.errstate(over="ignore"):
                loss, correct, by_product, diag = evaluate(rows)
            total = totals[worker]
            total[0] += loss
            total[1] += correct
            total[2] += by_product
            total[3] += diag

        def evaluate(rows):
            Xb = X[rows]
            Lx = np.asarray(Xb @ Lam)  # (Lambda x)_p for every row and pixel
            R = np.zeros_like(Xb)  # dJ / d(Lambda x)_p, summed over the pairs
            diag = np.zeros(X.shape[1])  # dJ / dLambda_pp through the t^2 term
            loss, correct = 0.0, 0
            g, e, w = np.empty_like(Xb), np.empty_like(Xb), np.empty_like(Xb)
            for steps in self.steps:
                t = steps[rows]
                tLx = t * Lx
                quadratic = t * t * half_diag
                for sign in (1.0, -1.0):
                    if sign > 0:  # G of the copy moved by sign * t
                        np.add(quadratic, tLx, out=g)
                    else:
                        np.subtract(quadratic, tLx, out=g)
                    correct += np.count_nonzero(g > 0)
                    # softplus(-G) = log(1 + exp(-|G|)) + max(-G, 0), never
                    # overflowing; its slope -sigmoid(-G) = -1 / (1 + exp(G)),
                    # which is 0 where exp(G) overflows to inf.
                    np.abs(g, out=e)
                    np.negative(e, out=e)
                    np.exp(e, out=e)
                    e += 1.0
                    loss += np.log(e, out=e).sum() - np.minimum(g, 0.0, out=e).sum()
                    np.exp(g, out=w)
                    w += 1.0
                    np.reciprocal(w, out=w)
                    w *= t
                    if sign > 0:
                        R -= w
                    else:
                        R += w
                    diag -= 0.5 * np.einsum("ij,ij->j", w, t)
            return loss, correct, pairs.col_dots(R, Xb) + pairs.col_dots(Xb, R), diag

        on_two_threads(len(X), self.block, work)
        (loss, correct, by_product, diag), other = totals
        gradient = 0.5 * pairs.weights * (by_product + other[2])
        gradient[self._diagonal] += diag + other[3]
        return ContrastValue(
            (loss + other[0]) / self.n_pairs,
            gradient / self.n_pairs,
            (correct + other[1]) / self.n_pairs,
        )
