r"""Score matching for a Gaussian with a masked precision, positive definite:
the solver, its public function and :class:`MaskedGaussianSM`.

For the model :math:`\log \tilde p(x) = -\tfrac12 (x-\mu)^\top \Lambda (x-\mu)`
Hyvärinen's score matching objective reduces to

.. math::  J(\Lambda) = \tfrac12 \operatorname{tr}(\Lambda S \Lambda) - \operatorname{tr}\Lambda,

a convex quadratic in the free entries :math:`\theta` of :math:`\Lambda`.
Writing :math:`E_p` for the symmetric unit matrix of pair :math:`p=(a,b)`,
:math:`J(\theta) = \tfrac12\theta^\top H\theta - g^\top\theta` with
:math:`H_{pq} = \operatorname{tr}(E_p S E_q)` and :math:`g_p = \operatorname{tr} E_p`.
:math:`H` couples two pairs only when they share a pixel, so it is sparse
and the unconstrained optimum :math:`\theta_0 = H^{-1} g` is one sparse
factorisation. That optimum is often indefinite, so we solve

.. math::  \min_\theta J(\theta) \quad \text{s.t.} \quad \Lambda(\theta) \succeq \varepsilon I

as the projection of :math:`\theta_0` onto :math:`\{\Lambda \succeq
\varepsilon I\}` in the metric :math:`H` (:func:`skdensity.linalg.project_pd`),
certified by the KKT conditions: stationarity :math:`P_E(\tfrac12(S\Lambda+\Lambda S)
- I - Z) = 0` (checked against :math:`S`, not assumed), feasibility and
complementarity. See :doc:`/design` for why this method.
"""

from dataclasses import dataclass, replace
from functools import lru_cache
from numbers import Real

import numpy as np
import scipy.sparse as sp

from ..linalg import (
    SchwarzBlocks,
    as_pairs,
    band_storage,
    banded_cholesky,
    banded_solver,
    minimize_pd,
    project_pd,
    projection_certificate,
    spd_solver,
    top_eigenvalue,
)
from ..linalg._banded import narrow_band
from ..linalg._mask_pairs import matrix_entries
from ..utils._compat import Interval, StrOptions
from ..utils._threads import single_threaded
from ..utils._validation import warn_unconverged
from ._base import BaseMaskedGaussian, MaskedFit
from ._decoupling import decoupled_spans, lone_variances
from ._inputs import (
    check_moments_and_mask,
    diagonal,
    factorisation_errors_as_value_errors,
    read_entries,
    unit_scale,
)

__all__ = [
    "MaskedGaussianSM",
    "ScoreMatchingInfo",
    "masked_score_matching",
    "metric_score_matching",
    "resolve_eps",
    "score_matching_hessian",
    "score_matching_system",
]


@dataclass(frozen=True)
class ScoreMatchingInfo:
    """What :func:`masked_score_matching` reports besides the precision.

    Attributes
    ----------
    eps : float
        The eigenvalue bound used.
    n_iter : int
        L-BFGS iterations of the dual solver.
    kkt_residual : float
        Relative KKT residual (the optimality certificate).
    min_eigenvalue : float
        Smallest eigenvalue of the estimate.
    unconstrained_min_eigenvalue : float
        Smallest eigenvalue of the unconstrained optimum.
    active_rank : int
        Number of eigen-directions pinned at ``eps``.
    dual_factor : ndarray of shape (n_features, r)
        Factor ``V`` of the constraint's multiplier ``Z = V V'`` (warm starts).
    converged : bool
        Whether ``kkt_residual <= tol``.
    """

    eps: float
    n_iter: int
    kkt_residual: float
    min_eigenvalue: float
    unconstrained_min_eigenvalue: float
    active_rank: int
    dual_factor: np.ndarray
    converged: bool


@dataclass(frozen=True)
class ScoreMatchingSystem:
    """The score matching Hessian ``H`` of one ``S`` on the free entries:
    ``hessp(v) = H v`` (from ``S`` itself) and ``solve(v) = H^{-1} v``
    (from its factorisation)."""

    hessp: callable
    solve: callable


# The bounds eps the solvers certify, relative to 1 / lambda_max(S): below, the
# complementarity of a pinned direction cannot be resolved in float64.
_EPS_RANGE = (1e-4, 100.0)


def resolve_eps(eps, S, top=None):
    """The lower bound on the precision's eigenvalues.

    ``"auto"`` gives ``0.5 / lambda_max(S)``: the model may then spread at most
    twice as much as the data along any direction (its variance along a
    pinned eigen-direction is ``1 / eps``). A much smaller bound lets a
    pinned direction carry huge variance and ruins samples. ``top`` gives
    ``lambda_max`` where ``S`` holds only a window of the covariance.
    """
    top = top_eigenvalue(S) if top is None else float(top)
    if isinstance(eps, str):  # "auto"
        return 0.5 / top
    ratio = float(eps) * top
    if not _EPS_RANGE[0] <= ratio <= _EPS_RANGE[1]:
        raise ValueError(
            f"eps={eps:g} is {ratio:.3g} times 1 / lambda_max(S) = {1 / top:.3g}, the data's "
            f"smallest precision scale; the solvers certify bounds from {_EPS_RANGE[0]:g} "
            f"to {_EPS_RANGE[1]:g} times it (eps='auto' is 0.5 times). A much smaller bound "
            "also lets a pinned direction take a variance far beyond the data's."
        )
    return float(eps)


@lru_cache(maxsize=8)
def anticommutator_pattern(pairs):
    """Where ``Delta -> w * P_E(S Delta + Delta S) / 2`` reads ``S``, in the
    free entries: ``(p, q, gather, coef)``, the operator being the sum of
    ``coef * S.flat[gather]`` at ``(p, q)`` (duplicates add up).

    It does not depend on ``S``: built once per mask and cached, so that the
    score matching Hessian of a new ``S`` is a gather and a ``bincount``.
    """
    # (S Delta + Delta S)/2 at pair (a, b), for Delta = E_q, collects
    # S[a, k] Delta[k, b] over neighbours k of b, and the mirror term.
    p1, k1, q1 = pairs.neighbour_products(pairs.cols)
    p2, k2, q2 = pairs.neighbour_products(pairs.rows)
    gather = (np.concatenate([pairs.rows[p1], pairs.cols[p2]]), np.concatenate([k1, k2]))
    p = np.concatenate([p1, p2])
    return p, np.concatenate([q1, q2]), gather, 0.5 * pairs.weights[p]


def _read(S, at):
    """``S`` at the index arrays ``at = (rows, cols)``."""
    return read_entries(
        S,
        *at,
        "on the mask's two-hop neighbourhood (every pair of features with a common "
        "neighbour: the 5x5 window of an 8-connected grid)",
    )


def score_matching_hessian(S, pairs):
    """Sparse Hessian ``H`` of the masked score matching objective.

    Parameters
    ----------
    S : ndarray or sparse matrix of shape (n_features, n_features)
        Second-moment matrix of the (centred) data; a sparse one must hold
        it on the mask's two-hop neighbourhood.
    pairs : MaskPairs
        The free entries.

    Returns
    -------
    H : scipy.sparse.csc_array of shape (n_pairs, n_pairs)
        Symmetric; positive definite when ``S`` is.
    """
    p, q, gather, coef = anticommutator_pattern(pairs)
    m = pairs.n_pairs
    return sp.csc_array((_read(S, gather) * coef, (p, q)), shape=(m, m))


def score_matching_system(S, pairs):
    """The :class:`ScoreMatchingSystem` of ``S``.

    ``H v`` sums the cached pattern's terms. Grid masks of moderate size get
    ``H`` straight in band storage and a banded Cholesky factor; its band is
    about five times the image width in the pairs' order, so the factor's
    cost grows as ``D w^2`` with a large constant, and beyond
    ``_DIRECT_FLOPS`` conjugate gradients with an additive Schwarz
    preconditioner solve instead (a few dozen ``H v`` per solve on images).
    Other masks go through a sparse ``H`` (:func:`~skdensity.linalg.spd_solver`).
    """
    p, q, gather, coef = anticommutator_pattern(pairs)
    vals = _read(S, gather) * coef
    m = pairs.n_pairs

    def hessp(v):
        return np.bincount(p, weights=vals * v[q], minlength=m)

    upper = p <= q
    u = int((q[upper] - p[upper]).max(initial=0))
    if narrow_band(m, u):
        if m * u * u > _DIRECT_FLOPS:
            H = sp.csr_array((vals, (p, q)), shape=(m, m))  # duplicates add up
            return ScoreMatchingSystem(hessp, _schwarz_cg_solver(hessp, H, pairs))
        # the pattern's duplicate entries add up in the band
        factor = banded_cholesky(
            band_storage(p[upper], q[upper], vals[upper], m, u), overwrite=True
        )
        if factor is not None:
            return ScoreMatchingSystem(hessp, banded_solver(factor))
    try:
        return ScoreMatchingSystem(hessp, spd_solver(score_matching_hessian(S, pairs)))
    except RuntimeError as exc:  # exactly singular
        raise ValueError(_SINGULAR) from exc


# Banded factorisations of the score matching Hessian up to this many flops
# (about a second here); larger ones are solved by conjugate gradients.
_DIRECT_FLOPS = 2e10
# Conjugate gradients stop at this residual relative to the right-hand side:
# the solves enter the optimality certificate, so they are solved to rounding.
_CG_RTOL = 1e-12


def _schwarz_cg_solver(hessp, H, pairs, max_iter=2000):
    """``v -> H^{-1} v`` by conjugate gradients, preconditioned by the sum of
    the inverses of ``H`` on the overlapping blocks of
    :class:`~skdensity.linalg.SchwarzBlocks`."""
    blocks = SchwarzBlocks.of(pairs)
    D, k = blocks.ids.shape
    rows = np.broadcast_to(blocks.ids[:, :, None], (D, k, k))
    cols = np.broadcast_to(blocks.ids[:, None, :], (D, k, k))
    M = blocks.preconditioner(matrix_entries(H, rows.ravel(), cols.ravel())[0].reshape(D, k, k))

    def solve_one(b):
        x = np.zeros_like(b)
        r = b.copy()
        z = M @ r
        d = z.copy()
        rz = r @ z
        stop = _CG_RTOL * np.linalg.norm(b)
        for _ in range(max_iter):
            if np.linalg.norm(r) <= stop:
                break
            Hd = hessp(d)
            curvature = d @ Hd
            if not curvature > 0:  # H is not positive definite
                raise ValueError(_SINGULAR)
            alpha = rz / curvature
            x += alpha * d
            r -= alpha * Hd
            z = M @ r
            rz, rz_old = r @ z, rz
            d = z + (rz / rz_old) * d
        return x

    def solve(v):
        if v.ndim == 1:
            return solve_one(v)
        return np.column_stack([solve_one(column) for column in v.T])

    return solve


_SINGULAR = (
    "The score matching system is singular: the covariance is not positive definite. Use reg > 0."
)


def masked_score_matching(
    S, mask, *, eps="auto", tol=1e-6, max_iter=5000, init=None, verbose=0, top_eigenvalue=None
):
    r"""Score matching estimate of a masked precision with ``Lambda >= eps I``.

    Parameters
    ----------
    S : ndarray or sparse matrix of shape (n_features, n_features)
        Positive definite second-moment matrix of the centred data (add a
        variance floor first if the empirical covariance is singular). The
        objective reads it only on the mask's two-hop neighbourhood, so a
        sparse ``S`` holding those entries (e.g. from
        :class:`~skdensity.gaussian.GridMoments`) is enough for any size.
    mask : array-like or sparse matrix of bool, shape (n_features, n_features)
        Symmetric sparsity pattern with a ``True`` diagonal.
    eps : float or "auto", default="auto"
        Lower bound on the eigenvalues of the estimate; see
        :func:`resolve_eps`.
    top_eigenvalue : float, default=None
        Largest eigenvalue of the full second-moment matrix, to which
        ``eps`` is relative; by default that of ``S`` as given (a sparse
        ``S`` holding only a window of the covariance has a smaller one).
    tol : float, default=1e-6
        Target for the relative KKT residual.
    max_iter : int, default=5000
        Maximum number of L-BFGS iterations in total.
    init : ndarray of shape (n_features, r), default=None
        Dual factor ``V`` to start from (``info.dual_factor`` of an earlier
        call), for warm starts.
    verbose : int, default=0
        Print progress when positive.

    Returns
    -------
    precision : ndarray or csr_array of shape (n_features, n_features)
        The estimate, zero outside ``mask``; sparse when ``S`` is.
    info : ScoreMatchingInfo
        The solver's certificate and multiplier.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import masked_score_matching
    >>> from skdensity.masks import grid_mask
    >>> X = np.random.default_rng(0).normal(size=(500, 9))
    >>> P, info = masked_score_matching(np.cov(X.T), grid_mask((3, 3)))
    >>> bool(info.min_eigenvalue >= info.eps)
    True
    """
    with factorisation_errors_as_value_errors():
        S, pairs = check_moments_and_mask(S, mask)
        theta, info = _masked_score_matching(
            S,
            pairs,
            eps=resolve_eps(eps, S, top_eigenvalue),
            tol=tol,
            max_iter=max_iter,
            init=init,
            verbose=verbose,
        )
    return (pairs.to_sparse(theta) if sp.issparse(S) else pairs.to_dense(theta)), info


def _masked_score_matching(S, pairs, *, eps, tol=1e-6, max_iter=5000, init=None, verbose=0):
    """:func:`masked_score_matching` in the free entries ``theta`` of the
    precision, from checked inputs and a resolved ``eps``, with LAPACK's
    errors left as they are."""
    c2 = unit_scale(S)
    if c2 != 1.0:  # solve in units where the mean variance is about 1
        theta, info = _masked_score_matching(
            S / c2, pairs, eps=eps * c2, tol=tol, max_iter=max_iter, init=init, verbose=verbose
        )
        return theta / c2, replace(
            info,
            eps=info.eps / c2,
            min_eigenvalue=info.min_eigenvalue / c2,
            unconstrained_min_eigenvalue=info.unconstrained_min_eigenvalue / c2,
        )
    with single_threaded():
        # A lone feature's optimum is 1 / S_aa; the bound binds on it only
        # if S_aa eps >= 1 (never for eps="auto": S_aa eps <= 1/2), so the
        # search for decoupled features runs only when it could matter.
        if np.any(diagonal(S) * eps >= 1.0):
            labels, _ = decoupled_spans(pairs, pairs.from_dense(S))
            alone = np.bincount(labels)[labels] == 1
            if np.any(alone & (diagonal(S) * eps >= 1.0)):
                return _split_score_matching(
                    S,
                    pairs,
                    eps=eps,
                    tol=tol,
                    max_iter=max_iter,
                    init=init,
                    verbose=verbose,
                    labels=labels,
                )
        return _solve_score_matching(
            S, pairs, eps=eps, tol=tol, max_iter=max_iter, init=init, verbose=verbose
        )


def _split_score_matching(S, pairs, *, eps, tol, max_iter, init, verbose, labels):
    """:func:`masked_score_matching` block by block (see :func:`decoupled_spans`),
    for when the bound binds on a feature the data decouple from all others.

    The optimum is block diagonal over the decoupled blocks, and so is a
    multiplier (the blocks' dual factors side by side): a lone feature has
    ``max(1 / S_aa, eps)`` in closed form, with multiplier ``S_aa eps - 1``
    where the bound binds, and each block of several features is solved
    apart. Several lone features pinned at ``eps`` are a cluster of equal
    pinned eigenvalues, on which the whole-problem solver stalls.
    """
    D = pairs.n_features
    size = np.bincount(labels)
    alone = np.flatnonzero(size[labels] == 1)
    variance = lone_variances(S, alone)
    lam = np.maximum(1.0 / variance, eps)
    theta = np.zeros(pairs.n_pairs)
    theta[pairs.pair_ids(alone, alone)] = lam
    pinned = np.flatnonzero(variance * lam > 1.0)
    V = np.zeros((D, pinned.size))
    V[alone[pinned], np.arange(pinned.size)] = np.sqrt(variance[pinned] * lam[pinned] - 1.0)
    factors = [V]
    n_iter, active_rank, kkt = 0, int(pinned.size), 0.0
    min_eigenvalue = float(lam.min(initial=np.inf))
    unconstrained = float((1.0 / variance).min(initial=np.inf))
    blocks = np.split(np.argsort(labels, kind="stable"), np.cumsum(size)[:-1])
    for idx in (idx for idx in blocks if idx.size > 1):
        block_pairs = as_pairs(pairs.submask(idx))
        block_theta, info = _solve_score_matching(
            S[idx][:, idx] if sp.issparse(S) else S[np.ix_(idx, idx)],
            block_pairs,
            eps=eps,
            tol=tol,
            max_iter=max_iter,
            init=None if init is None else init[idx],
            verbose=verbose,
        )
        theta[pairs.pair_ids(idx[block_pairs.rows], idx[block_pairs.cols])] = block_theta
        V = np.zeros((D, info.dual_factor.shape[1]))
        V[idx] = info.dual_factor
        factors.append(V)
        n_iter += info.n_iter
        active_rank += info.active_rank
        kkt = max(kkt, info.kkt_residual)
        min_eigenvalue = min(min_eigenvalue, info.min_eigenvalue)
        unconstrained = min(unconstrained, info.unconstrained_min_eigenvalue)
    return theta, ScoreMatchingInfo(
        eps=eps,
        n_iter=n_iter,
        kkt_residual=kkt,
        min_eigenvalue=min_eigenvalue,
        unconstrained_min_eigenvalue=unconstrained,
        active_rank=active_rank,
        dual_factor=np.hstack(factors),
        converged=kkt <= tol,
    )


def _solve_score_matching(S, pairs, *, eps, tol, max_iter, init=None, verbose=0, system=None):
    """:func:`masked_score_matching` on MaskPairs with an ``eps`` the caller
    resolved (a number), in the free entries ``theta``; ``system`` is
    :func:`score_matching_system`'s result when the caller factorised the
    Hessian already."""
    pairs = as_pairs(pairs)
    eps = float(eps)  # resolved and checked by the caller
    system = system if system is not None else score_matching_system(S, pairs)
    theta0 = system.solve(pairs.is_diag.astype(float))
    if not np.all(np.isfinite(theta0)):
        raise ValueError(_SINGULAR)

    def certificate(theta, lam_min, V):
        return _certificate(system.hessp, theta, lam_min, V, eps, pairs)

    # The constrained optimum is the projection of the unconstrained one in
    # the metric of the Hessian (J is quadratic).
    result = project_pd(
        theta0,
        system.solve,
        pairs,
        eps,
        tol=tol,
        max_iter=max_iter,
        init=init,
        certificate=certificate,
        verbose=verbose,
    )
    V = result.dual_factor
    scale = 1e-8 * max(1.0, np.abs(V).max(initial=0.0))
    info = ScoreMatchingInfo(
        eps=eps,
        n_iter=result.n_iter,
        kkt_residual=result.kkt_residual,  # certified with _certificate
        min_eigenvalue=result.min_eigenvalue,
        unconstrained_min_eigenvalue=result.unconstrained_min_eigenvalue,
        active_rank=int(np.sum(np.linalg.norm(V, axis=0) > scale)),
        dual_factor=V,
        converged=result.kkt_residual <= tol,
    )
    if not info.converged:
        warn_unconverged(
            "Score matching", info.kkt_residual, tol=tol, n_iter=info.n_iter, max_iter=max_iter
        )
    return result.x, info


def _certificate(hessp, theta, lam_min, V, eps, pairs):
    """Relative KKT residual of the constrained score matching problem.

    Stationarity is taken entrywise (its terms are dimensionless):
    ``P_E((S Lambda + Lambda S) / 2)`` is ``H theta / w``, with ``hessp``
    assembled from ``S`` (independent of the solver's factorisation).
    Feasibility and complementarity are relative to eps.
    """
    sym_S_Lambda = hessp(theta) / pairs.weights
    stationarity = np.abs(sym_S_Lambda - pairs.is_diag - pairs.gram_entries(V)).max()
    return float(max(stationarity, projection_certificate(pairs, theta, lam_min, V, eps)))


def metric_score_matching(S, A, mask, eps, *, tol=1e-8, max_iter=20000):
    r"""Score matching in the metric ``A``, under ``Lambda >= eps I``: a reference.

    Minimises :math:`\tfrac12\operatorname{tr}(\Lambda A\Lambda S) -
    \operatorname{tr}(A\Lambda)` over precisions supported on ``mask``. It is
    the small-noise limit of conditional NCE with noise
    :math:`N(0, \epsilon^2 A)` (``A = I``: :func:`masked_score_matching`),
    used to measure that limit. The Hessian in the free entries is formed
    densely (``n_pairs**2`` floats) and the problem solved by projected
    L-BFGS (:func:`~skdensity.linalg.minimize_pd`) to a relative KKT
    residual ``tol``.

    Parameters
    ----------
    S : ndarray of shape (n_features, n_features)
        Second-moment matrix of the centred data.
    A : ndarray of shape (n_features, n_features)
        Positive definite metric (the noise's covariance shape).
    mask : ndarray of bool or MaskPairs
        Sparsity pattern with a True diagonal.
    eps : float
        Lower bound on the eigenvalues.
    tol, max_iter : float, int
        Solver tolerance and iteration cap.

    Returns
    -------
    precision : ndarray of shape (n_features, n_features)
    info : PDMinimizeResult
        The projected L-BFGS result.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import masked_score_matching
    >>> from skdensity.gaussian import metric_score_matching
    >>> from skdensity.masks import grid_mask
    >>> X = np.random.default_rng(0).normal(size=(500, 9))
    >>> S, mask = np.cov(X.T), grid_mask((3, 3), 4)
    >>> P, _ = metric_score_matching(S, np.eye(9), mask, eps=0.1)
    >>> P_sm, _ = masked_score_matching(S, mask, eps=0.1, tol=1e-10)
    >>> bool(np.allclose(P, P_sm, atol=1e-6))
    True
    """
    S, pairs = check_moments_and_mask(S, mask)
    A, _ = check_moments_and_mask(A, pairs)
    r, c, w = pairs.rows, pairs.cols, pairs.weights
    # d^2 / dx_p dx_q of tr(L A L S) / 2 for L = sum_p x_p E_p, symmetrised.
    H = 0.5 * (
        A[r][:, r] * S[c][:, c]
        + A[r][:, c] * S[c][:, r]
        + S[r][:, r] * A[c][:, c]
        + S[r][:, c] * A[c][:, r]
    )
    H *= np.outer(w, 0.5 * w)
    g = w * A[r, c]

    def fg(x):
        Hx = H @ x
        return 0.5 * x @ Hx - g @ x, Hx - g

    # A feasible start: a multiple of the identity above eps and 1 / min var.
    x0 = pairs.from_dense(np.eye(S.shape[0]) * max(2.0 * eps, 1.0 / np.diag(S).min()))
    result = minimize_pd(fg, x0, pairs, eps, tol=tol, max_iter=max_iter)
    return pairs.to_dense(result.x), result


@dataclass(frozen=True)
class _ScoreMatchingFit(MaskedFit):
    eps: float
    unconstrained_min_eigenvalue: float
    n_active: int
    dual_factor: np.ndarray


class MaskedGaussianSM(BaseMaskedGaussian):
    r"""Gaussian Markov random field fitted by score matching, positive definite.

    Minimises Hyvärinen's score matching objective
    :math:`J(\Lambda) = \tfrac12\operatorname{tr}(\Lambda S\Lambda) - \operatorname{tr}\Lambda`
    over precision matrices supported on a pixel-neighbourhood mask, subject
    to :math:`\Lambda \succeq \varepsilon I`. The unconstrained optimum is a
    single sparse linear solve but is often indefinite on images (MNIST,
    natural patches); the constrained problem is solved through its dual in low-rank
    form (see :func:`masked_score_matching`) and certified by its
    KKT conditions. The fitted model is a proper Gaussian: exact
    log-densities, sampling.

    Parameters
    ----------
    image_shape : tuple of int, default=None
        ``(height, width)`` of the images in ``X`` (row-major pixels). If
        None, a square when ``n_features`` is a perfect square, otherwise a
        one-row signal ``(1, n_features)`` (a chain graph).
    connectivity : {4, 8}, default=8
        Neighbourhood of the grid mask; ignored when ``mask`` is given.
    mask : array-like or sparse matrix of shape (n_features, n_features), default=None
        Symmetric boolean sparsity pattern with a True diagonal (any graph).
        Overrides ``connectivity``.
    reg : float, default=0.01
        Variance floor added to the diagonal of the empirical covariance
        (absolute, in squared data units; 0.01 suits pixels in [0, 1]).
        Needed when pixels never vary (MNIST's borders).
    assume_centered : bool, default=False
        If True, the mean is taken to be zero.
    eps : float or "auto", default="auto"
        Lower bound on the eigenvalues of the precision. ``"auto"`` is
        ``0.5 / lambda_max(S)``: the model's variance along any direction is
        at most twice the data's largest variance. A tiny bound lets a pinned
        direction take a huge variance, which ruins samples.
    tol : float, default=1e-6
        Target relative KKT residual.
    max_iter : int, default=5000
        Maximum number of L-BFGS iterations of the dual solver.
    verbose : int, default=0
        Print solver progress when positive.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Mean.
    precision_ : scipy.sparse.csr_array of shape (n_features, n_features)
        Estimated precision, zero outside ``mask_`` (sparse at every size).
    covariance_ : ndarray of shape (n_features, n_features)
        Its inverse, formed on access: ``D^2`` floats, refused with a
        clear error where they would not fit in memory.
    precision_cholesky_ : ndarray of shape (n_features, n_features)
        Dense lower Cholesky factor of ``precision_``, formed on access like
        ``covariance_``. Scoring and sampling use a banded factor instead.
    empirical_covariance_ : scipy.sparse.csr_array of shape (n_features, n_features)
        Covariance of the data seen (without ``reg``) on the mask's two-hop
        neighbourhood, all the solvers read (the 5x5 window of a grid
        mask); ``partial_fit`` merges it exactly.
    mask_ : scipy.sparse.csr_array of bool, shape (n_features, n_features)
        The mask used.
    empirical_top_eigenvalue_ : float
        Largest eigenvalue of the empirical covariance, computed from the
        data by Lanczos; ``eps="auto"`` is relative to it. After
        ``partial_fit`` it is an upper bound (the batches' own, combined by
        Weyl's inequality), so ``eps_`` may be slightly smaller than one
        ``fit`` on all the data gives.
    image_shape_ : tuple of int
        The image shape used.
    eps_ : float
        The eigenvalue bound used.
    unconstrained_min_eigenvalue_ : float
        Smallest eigenvalue of the unconstrained optimum (negative: it would
        not have been a valid Gaussian).
    n_active_ : int
        Number of eigen-directions pinned at ``eps_``.
    dual_factor_ : ndarray of shape (n_features, r)
        Low-rank factor of the constraint's multiplier (warm starts); its
        ``r`` columns cover the ``n_active_`` pinned directions.
    kkt_residual_ : float
        Relative KKT residual (optimality certificate).
    min_eigenvalue_ : float
        Smallest eigenvalue of ``precision_``.
    n_iter_ : int
        L-BFGS iterations used.
    n_samples_seen_ : int
        Samples seen by ``fit`` / ``partial_fit``.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    MaskedGaussianMLE : Maximum likelihood on the same mask.

    Examples
    --------
    >>> from skdensity import MaskedGaussianSM
    >>> from skdensity.datasets import load_mnist
    >>> X = load_mnist().data[:2000]
    >>> sm = MaskedGaussianSM(connectivity=4).fit(X)
    >>> bool(sm.min_eigenvalue_ > 0), sm.sample(3, random_state=0).shape
    (True, (3, 784))
    """

    _parameter_constraints: dict = {
        **BaseMaskedGaussian._parameter_constraints,
        "eps": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        image_shape=None,
        connectivity=8,
        mask=None,
        reg=0.01,
        assume_centered=False,
        eps="auto",
        tol=1e-6,
        max_iter=5000,
        verbose=0,
    ):
        self.image_shape = image_shape
        self.connectivity = connectivity
        self.mask = mask
        self.reg = reg
        self.assume_centered = assume_centered
        self.eps = eps
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    _needs_top_eigenvalue = True

    def _estimate_precision(self, S, structure, warm_start, data):
        precision, info = masked_score_matching(
            S,
            structure.pairs,
            eps=self.eps,
            top_eigenvalue=data.top_eigenvalue,
            tol=self.tol,
            max_iter=self.max_iter,
            init=self.dual_factor_ if warm_start else None,
            verbose=self.verbose,
        )
        return _ScoreMatchingFit(
            precision=precision,
            n_iter=info.n_iter,
            kkt_residual=info.kkt_residual,
            min_eigenvalue=info.min_eigenvalue,
            eps=float(info.eps),
            unconstrained_min_eigenvalue=float(info.unconstrained_min_eigenvalue),
            n_active=info.active_rank,
            dual_factor=info.dual_factor,
        )
