"""Extreme eigenpairs of symmetric matrices, and square roots by eigenvectors."""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from ..utils._threads import single_threaded
from ._banded import banded_solver, shift_below_spectrum, upper_band

__all__ = ["bottom_eig", "lanczos_top", "sqrtm_rows", "top_eigenvalue"]


def bottom_eig(A, k=1):
    """The ``k`` smallest eigenpairs of a symmetric matrix (dense or sparse).

    Large narrowly banded sparse matrices (precisions on grid masks) use
    shift-invert Lanczos below the spectrum (:func:`shift_below_spectrum`):
    each step is one banded triangular solve. Other large sparse matrices use
    plain Lanczos, small ones LAPACK. Lanczos starts from a fixed vector, so
    results are reproducible.
    """
    D = A.shape[0]
    k = min(k, D)
    if not (sp.issparse(A) and D > 200):
        return _dense_bottom(A.toarray() if sp.issparse(A) else A, k)
    ab = upper_band(A)
    shift, factor = shift_below_spectrum(ab) if ab is not None else (None, None)
    if factor is not None and k == 1:
        with single_threaded():
            found = _shift_invert_lanczos(banded_solver(factor), shift, D)
        if found is not None:
            return found
    if factor is not None:
        op = LinearOperator((D, D), dtype=float, matvec=banded_solver(factor))
        kwargs = dict(sigma=shift, which="LM", OPinv=op)
    else:
        kwargs = dict(which="SA")
    try:
        with single_threaded():  # many small triangular solves
            try:
                w, U = eigsh(A, k=k, tol=0, v0=np.ones(D), maxiter=10, **kwargs)
            except ArpackNoConvergence:
                # A tight cluster at the bottom (several directions pinned at
                # one bound) stalls Lanczos with ARPACK's default basis; a
                # larger one resolves it.
                w, U = eigsh(A, k=k, tol=0, v0=np.ones(D), ncv=min(D, max(64, 4 * k)), **kwargs)
    except ArpackNoConvergence:
        return _dense_bottom(A.toarray(), k)  # LAPACK always works
    order = np.argsort(w)
    return w[order], U[:, order]


def _dense_bottom(A, k):
    """LAPACK's ``k`` smallest eigenpairs, by divide and conquer: the subset
    driver (syevr) fails with "Internal Error" on nearly scalar matrices."""
    w, U = la.eigh(A, driver="evd")
    return w[:k], U[:, :k]


def _shift_invert_lanczos(solve, shift, D, max_steps=200, rtol=1e-13):
    """The smallest eigenpair of ``A`` from ``solve = (A - shift I)^{-1}``
    (``shift`` below the spectrum), or None if :func:`lanczos_top` has not
    converged after ``max_steps`` (ARPACK then runs).

    ARPACK's shift-invert mode from the same start (ones), without its
    reverse-communication loop in Python; converged Ritz pairs are checked
    every 4 steps.
    """
    theta, u, converged = lanczos_top(
        solve, np.ones(D), rtol=rtol, max_steps=max_steps, check_every=4
    )
    if not converged:
        return None
    return np.array([shift + 1.0 / theta]), u[:, None]


def lanczos_top(matvec, start, *, rtol, max_steps, check_every=1):
    """The largest eigenpair of a symmetric operator given by ``matvec``,
    by Lanczos with full reorthogonalisation from ``start``.

    A Ritz pair is converged when its residual bound ``beta_m |s_m|`` is
    below ``rtol`` times its Ritz value (checked every ``check_every``
    steps). Returns ``(value, vector, converged)``: the last Ritz pair when
    ``max_steps`` run out.
    """
    D = start.size
    steps = min(max_steps, D)
    Q = np.empty((steps + 1, D))
    Q[0] = start / np.linalg.norm(start)
    alpha, beta = np.empty(steps), np.empty(steps)
    theta, u = 0.0, Q[0]
    for j in range(steps):
        w = matvec(Q[j])
        alpha[j] = Q[j] @ w
        for _ in range(2):  # full reorthogonalisation: "twice is enough"
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        m = j + 1
        exhausted = beta[j] <= 1e-14 * abs(alpha[j])  # an invariant subspace
        if m % check_every == 0 or m == steps or exhausted:
            values, s = la.eigh_tridiagonal(
                alpha[:m], beta[: m - 1], select="i", select_range=(m - 1, m - 1)
            )
            theta, u = float(values[0]), Q[:m].T @ s[:, 0]
            if exhausted or beta[j] * abs(s[-1, 0]) <= rtol * abs(theta):
                return theta, u, True
        Q[j + 1] = w / beta[j]
    return theta, u, False


def top_eigenvalue(S):
    """The largest eigenvalue of a symmetric matrix (dense, sparse or a
    ``LinearOperator``).

    Lanczos (a few matrix-vector products) on large matrices, from a fixed
    start: ARPACK's own random start carries its seed from call to call, so
    results would depend on what ran before in the process.
    """
    if S.shape[0] <= 50:
        # All eigenvalues by divide and conquer: LAPACK's subset driver (syevr)
        # fails with "Internal Error" on nearly scalar matrices.
        dense = S.toarray() if sp.issparse(S) else S
        return la.eigh(dense, eigvals_only=True, driver="evd")[-1]
    v0 = np.random.default_rng(0).uniform(0.5, 1.5, S.shape[0])
    return eigsh(S, k=1, which="LA", return_eigenvectors=False, tol=1e-10, v0=v0)[0]


def sqrtm_rows(e, C):
    """The rows of ``e`` mapped by the symmetric square root of ``C``: rows
    of ``N(0, I)`` become rows of ``N(0, C)``, for a semi-definite ``C`` too."""
    w, U = la.eigh(C)
    return (e @ U) * np.sqrt(np.clip(w, 0, None)) @ U.T
