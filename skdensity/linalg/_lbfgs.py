"""Preconditioned L-BFGS that respects an open feasible set.

scipy's L-BFGS-B takes no preconditioner and cannot be told that a step left
the domain. This version accepts an approximate inverse Hessian as its
initial matrix (the positive-definite projection's dual needs one) and
backtracks whenever the objective returns ``inf``.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["LBFGSMemory", "LBFGSResult", "minimize_lbfgs"]


@dataclass(frozen=True)
class LBFGSResult:
    """What :func:`minimize_lbfgs` returns.

    ``converged`` is False also when the callback stopped the run.
    """

    x: np.ndarray
    fun: float
    n_iter: int
    converged: bool


def minimize_lbfgs(
    fg, x0, *, max_iter=500, gtol=1e-6, ftol=1e-12, memory=10, callback=None, precondition=None
):
    """Minimise ``fg(x) -> (f, grad)``; ``f = inf`` marks infeasible points.

    Parameters
    ----------
    fg : callable
        Objective and gradient; must be finite at ``x0``.
    x0 : ndarray
        Feasible starting point.
    max_iter : int
        Maximum number of iterations.
    gtol : float
        Stop when ``max|grad| <= gtol``.
    ftol : float
        Stop when the relative decrease of ``f`` falls below ``ftol``.
    memory : int
        Number of curvature pairs kept.
    callback : callable, optional
        Called with ``(x, f)`` after each iteration; returning True stops.
    precondition : callable, optional
        ``v -> M^{-1} v`` for a positive definite approximation ``M`` of the
        Hessian; it replaces the scaled identity as the initial inverse
        Hessian of the two-loop recursion (preconditioned L-BFGS).

    Returns
    -------
    result : LBFGSResult
    """
    x = np.array(x0, dtype=float)
    f, g = fg(x)
    if not np.isfinite(f):
        raise ValueError("The starting point is not feasible.")
    mem = LBFGSMemory(memory, precondition)
    n_iter = 0
    converged = False
    while n_iter < max_iter:
        if np.abs(g).max() <= gtol:
            converged = True
            break
        d = -mem.inverse(g)(g)
        slope = g @ d
        if slope >= 0:  # not a descent direction: restart
            mem.clear()
            d = -g / max(np.linalg.norm(g), 1e-300)
            slope = g @ d
        t = 1.0
        for _ in range(60):  # backtracking: feasible and sufficient decrease
            f_new, g_new = fg(x + t * d)
            if np.isfinite(f_new) and f_new <= f + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break  # no progress possible
        s, y = t * d, g_new - g
        x = x + s
        n_iter += 1
        decrease = f - f_new
        f, g = f_new, g_new
        if callback is not None and callback(x, f):
            break
        mem.add(s, y)
        if decrease <= ftol * max(abs(f), 1.0):
            converged = True
            break
    return LBFGSResult(x=x, fun=f, n_iter=n_iter, converged=converged)


class LBFGSMemory:
    """Curvature pairs of L-BFGS and the inverse Hessian they define.

    The inverse is applied in compact form (Byrd, Nocedal & Schnabel 1994):
    ``H = gamma P + [S, gamma P Y] M [S, gamma P Y]'`` with a small
    ``2k x 2k`` matrix ``M``, where ``P`` is the preconditioner's inverse.
    It equals the two-loop recursion, but one application is one ``P`` and
    four thin matrix products instead of ``4k`` vector operations in Python,
    which matters where one inverse serves many right-hand sides (a
    projection applies it once per dual step). ``P y`` and the inner products
    ``S'Y``, ``Y'PY`` are computed once per pair, when it is added, into
    fixed buffers (rows in storage order, oldest overwritten).

    Parameters
    ----------
    memory : int
        Number of pairs kept.
    precondition : callable, optional
        ``v -> P v``, ``P`` a positive definite approximation of the inverse
        Hessian (the identity by default).
    """

    def __init__(self, memory, precondition=None):
        self.memory = int(memory)
        self.precondition = precondition if precondition is not None else (lambda v: v)
        self.clear()

    def __len__(self):
        return len(self._order)

    def clear(self):
        self._order = []  # storage slots, oldest first
        self._S = self._Y = self._PY = None

    def add(self, s, y):
        """Keep ``(s, y)`` if its curvature is positive (a cosine test, so
        independent of the data's scale); the oldest pair beyond ``memory``
        is overwritten."""
        if not y @ s > 1e-10 * np.linalg.norm(y) * np.linalg.norm(s):
            return False
        if self._S is None:
            shape = (self.memory, s.size)
            self._S, self._Y, self._PY = np.zeros(shape), np.zeros(shape), np.zeros(shape)
            self._SY, self._YPY = np.zeros((self.memory,) * 2), np.zeros((self.memory,) * 2)
        if len(self._order) < self.memory:
            slot = len(self._order)
        else:
            slot = self._order.pop(0)
        self._order.append(slot)
        self._S[slot], self._Y[slot] = s, y
        self._PY[slot] = self.precondition(y)
        k = len(self._order)
        # SY[i, j] = s_i' y_j: the new slot's row and column
        self._SY[slot, :k], self._SY[:k, slot] = self._Y[:k] @ s, self._S[:k] @ y
        self._YPY[slot, :k] = self._YPY[:k, slot] = self._PY[:k] @ y
        return True

    @property
    def s(self):
        """The pairs' ``s``, oldest first."""
        return [self._S[i] for i in self._order]

    @property
    def y(self):
        """The pairs' ``y``, oldest first."""
        return [self._Y[i] for i in self._order]

    def inverse(self, g):
        """``v -> H v``; ``v`` may hold several right-hand sides as columns.

        The initial matrix is ``gamma P``: ``gamma`` matches the newest pair,
        or, without pairs, makes the step ``-H g`` of unit length in the
        ``P``-norm. The returned function reads the pair buffers in place
        (no copies per call): it is valid until the next ``add`` or ``clear``.
        """
        P = self.precondition
        k = len(self._order)
        if k == 0:
            gamma = 1.0 / max(np.sqrt(abs(g @ P(g))), 1e-300)
            return lambda v: gamma * P(np.asarray(v, dtype=float))
        new = self._order[-1]
        gamma = self._SY[new, new] / self._YPY[new, new]
        # M in chronological order (R = upper triangle of S'Y), then mapped
        # back to storage order so that the buffers are used as they lie.
        order = np.array(self._order)
        SY = self._SY[np.ix_(order, order)]  # SY[i, j] = s_i' y_j
        R_inv = np.linalg.inv(np.triu(SY))
        middle = R_inv.T @ (np.diag(np.diag(SY)) + gamma * self._YPY[np.ix_(order, order)]) @ R_inv
        slots = np.argsort(order)  # chronological position of each slot
        A = middle[np.ix_(slots, slots)]
        B = -R_inv.T[np.ix_(slots, slots)]
        S, PY = self._S[:k], self._PY[:k]

        def apply(v):
            v = np.asarray(v, dtype=float)
            a, b = S @ v, gamma * (PY @ v)
            p = A @ a + B @ b
            q = B.T @ a
            return gamma * P(v) + S.T @ p + gamma * (PY.T @ q)

        return apply
