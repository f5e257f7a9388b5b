r"""Score matching for a Gaussian with a masked precision, positive definite.

For the model :math:`\log \tilde p(x) = -\tfrac12 (x-\mu)^\top \Lambda (x-\mu)`
Hyvärinen's score matching objective reduces to

.. math::  J(\Lambda) = \tfrac12 \operatorname{tr}(\Lambda S \Lambda) - \operatorname{tr}\Lambda,

a convex quadratic in the free entries :math:`\theta` of :math:`\Lambda`
(those allowed by the mask). Writing :math:`E_p` for the symmetric unit
matrix of pair :math:`p=(a,b)`, :math:`J(\theta) = \tfrac12\theta^\top H\theta
- g^\top\theta` with :math:`H_{pq} = \operatorname{tr}(E_p S E_q)` and
:math:`g_p = \operatorname{tr} E_p`. :math:`H` couples two pairs only when they
share a pixel, so it is sparse (at most 18 entries a row for an 8-connected
grid) and the unconstrained optimum :math:`\theta_0 = H^{-1} g` is one sparse
factorisation.

That optimum is often indefinite (MNIST, natural patches), so we solve

.. math::  \min_\theta J(\theta) \quad \text{s.t.} \quad \Lambda(\theta) \succeq \varepsilon I .

**Method: a projection.** :math:`J` is quadratic, so the constrained optimum
is the projection of :math:`\theta_0` onto :math:`\{\Lambda \succeq
\varepsilon I\}` in the metric :math:`H`: the low-rank dual of
:func:`skdensity._pd_projection.project_pd` (:math:`Z = VV^\top`, on MNIST one
pinned direction), where every dual evaluation is one solve with the sparse
factor of :math:`H`, reused throughout. The result is certified by the KKT
conditions: stationarity :math:`P_E(\tfrac12(S\Lambda+\Lambda S) - I - Z) =
0` (checked against :math:`S`, not assumed), feasibility
:math:`\lambda_{\min}(\Lambda) \ge \varepsilon`, and complementarity
:math:`\langle Z, \Lambda - \varepsilon I\rangle = 0`.

Log-barrier Newton and ADMM reach the same point but need a dense
factorisation per iteration (ADMM: about 1,300 iterations on MNIST); the
low-rank dual needs a few dozen sparse solves when few directions are active.
"""

import warnings

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh
from sklearn.exceptions import ConvergenceWarning

from ._banded import (
    band_storage,
    banded_cholesky,
    banded_solver,
    narrow_band,
    single_threaded,
    spd_solver,
)
from ._pairs import as_pairs, decoupled_spans, lone_variances
from ._pd_constraint import minimize_pd
from ._pd_projection import project_pd, projection_certificate

__all__ = ["masked_score_matching", "metric_score_matching", "score_matching_hessian",
           "resolve_eps"]


def score_matching_hessian(S, pairs):
    """Sparse Hessian ``H`` of the masked score matching objective.

    Parameters
    ----------
    S : ndarray of shape (n_features, n_features)
        Second-moment matrix of the (centred) data.
    pairs : MaskPairs
        The free entries.

    Returns
    -------
    H : scipy.sparse.csc_array of shape (n_pairs, n_pairs)
        Symmetric; positive definite when ``S`` is.
    """
    p, q, gather, coef = pairs.anticommutator_pattern()
    m = pairs.n_pairs
    return sp.csc_array((np.asarray(S).ravel()[gather] * coef, (p, q)), shape=(m, m))


def resolve_eps(eps, S):
    """The lower bound on the precision's eigenvalues.

    ``"auto"`` gives ``0.5 / lambda_max(S)``: the model may then spread at most
    twice as much as the data along any direction (its variance along a
    pinned eigen-direction is ``1 / eps``). A much smaller bound lets a
    pinned direction carry huge variance and ruins samples.
    """
    if isinstance(eps, str):  # "auto"
        if S.shape[0] > 50:  # Lanczos: a few matvecs instead of a tridiagonalisation
            # A fixed start: ARPACK's own random start continues its seed from
            # call to call, so eps (and a fit near its tolerance) depended on
            # what had run before in the process.
            v0 = np.random.default_rng(0).uniform(0.5, 1.5, S.shape[0])
            top = eigsh(S, k=1, which="LA", return_eigenvectors=False, tol=1e-10, v0=v0)[0]
        else:
            top = la.eigh(S, eigvals_only=True, subset_by_index=[S.shape[0] - 1] * 2)[0]
        return 0.5 / top
    return float(eps)


def masked_score_matching(
    S, mask, *, eps="auto", tol=1e-6, max_iter=5000, init=None, verbose=0
):
    r"""Score matching estimate of a masked precision with ``Lambda >= eps I``.

    Parameters
    ----------
    S : ndarray of shape (n_features, n_features)
        Positive definite second-moment matrix of the centred data (add a
        variance floor first if the empirical covariance is singular).
    mask : ndarray of bool, shape (n_features, n_features)
        Symmetric sparsity pattern with a ``True`` diagonal.
    eps : float or "auto", default="auto"
        Lower bound on the eigenvalues of the estimate; see
        :func:`resolve_eps`.
    tol : float, default=1e-6
        Target for the relative KKT residual.
    max_iter : int, default=5000
        Maximum number of L-BFGS iterations in total.
    init : ndarray of shape (n_features, r), default=None
        Dual factor ``V`` to start from (``info["dual_factor"]`` of an earlier
        call), for warm starts.
    verbose : int, default=0
        Print progress when positive.

    Returns
    -------
    precision : ndarray of shape (n_features, n_features)
        The estimate, zero outside ``mask``.
    info : dict
        ``n_iter``, ``eps``, ``kkt_residual``, ``min_eigenvalue``,
        ``unconstrained_min_eigenvalue``, ``active_rank``, ``dual_factor``,
        ``converged``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.masks import grid_mask
    >>> from skdensity._score_matching import masked_score_matching
    >>> X = np.random.default_rng(0).normal(size=(500, 9))
    >>> P, info = masked_score_matching(np.cov(X.T), grid_mask((3, 3)))
    >>> bool(info["min_eigenvalue"] >= info["eps"])
    True
    """
    # Every step is a sparse solve or a small dense product, on which
    # OpenBLAS's threads cost more than they save (measured: the solve
    # after the covariance pass 0.24 s with two threads, 0.14 s with one).
    # The top eigenvalue of the dense S is matrix-vector products, which two
    # threads speed up (1.6 against 3.7 ms at 784 pixels).
    eps = resolve_eps(eps, S)
    with single_threaded():
        pairs = as_pairs(mask)
        # A lone feature's optimum is 1 / S_aa; the bound binds on it only if
        # S_aa eps >= 1, never for eps="auto" (S_aa eps <= 1/2): the search
        # for decoupled features (0.8 ms at 784 pixels) runs only when
        # some feature could need it.
        if np.any(np.diag(S) * eps >= 1.0):
            labels, _ = decoupled_spans(pairs, pairs.from_dense(S))
            alone = np.bincount(labels)[labels] == 1
            if np.any(alone & (np.diag(S) * eps >= 1.0)):  # the bound binds on a lone feature
                return _split_score_matching(S, pairs, eps, tol, max_iter, init, verbose,
                                             labels)
        return _masked_score_matching(S, pairs, eps, tol, max_iter, init, verbose)


def _split_score_matching(S, pairs, eps, tol, max_iter, init, verbose, labels):
    """:func:`masked_score_matching` block by block (see :func:`decoupled_spans`),
    for when the bound binds on a feature that the data decouple from all others.

    The optimum is block diagonal over the decoupled blocks, and so is a
    multiplier (the blocks' dual factors side by side): a lone feature has
    ``max(1 / S_aa, eps)`` in closed form, with multiplier ``S_aa eps - 1``
    where the bound binds, and each block of several features is solved
    apart. Several lone features pinned at ``eps`` are a cluster of equal
    pinned eigenvalues, on which the whole-problem solver stalls (KKT
    residual 1.0 for eight such features). Otherwise (always for
    ``eps="auto"``: ``1 / S_aa >= 1 / lambda_max(S) = 2 eps``) the whole
    problem is solved as one, which is faster (33 against 39 ms block by
    block on MNIST-10k: the blocks' gathers cost what their smaller
    factorisations save).
    """
    D = pairs.n_features
    size = np.bincount(labels)
    alone = np.flatnonzero(size[labels] == 1)
    variance = lone_variances(S, alone)
    lam = np.maximum(1.0 / variance, eps)
    precision = np.zeros((D, D))
    precision[alone, alone] = lam
    pinned = np.flatnonzero(variance * lam > 1.0)
    V = np.zeros((D, pinned.size))
    V[alone[pinned], np.arange(pinned.size)] = np.sqrt(variance[pinned] * lam[pinned] - 1.0)
    factors = [V]
    info = dict(eps=eps, n_iter=0, kkt_residual=0.0, active_rank=int(pinned.size),
                min_eigenvalue=float(lam.min(initial=np.inf)),
                unconstrained_min_eigenvalue=float((1.0 / variance).min(initial=np.inf)))
    blocks = np.split(np.argsort(labels, kind="stable"), np.cumsum(size)[:-1])
    for idx in (idx for idx in blocks if idx.size > 1):
        block = np.ix_(idx, idx)
        P, block_info = _masked_score_matching(
            S[block], as_pairs(pairs.submask(idx)), eps, tol, max_iter,
            None if init is None else init[idx], verbose,
        )
        precision[block] = P
        V = np.zeros((D, block_info["dual_factor"].shape[1]))
        V[idx] = block_info["dual_factor"]
        factors.append(V)
        for key, combine in [("n_iter", sum), ("active_rank", sum), ("kkt_residual", max),
                             ("min_eigenvalue", min), ("unconstrained_min_eigenvalue", min)]:
            info[key] = combine((info[key], block_info[key]))
    info["dual_factor"] = np.hstack(factors)
    info["converged"] = info["kkt_residual"] <= tol
    return precision, info


def score_matching_system(S, pairs):
    """The score matching Hessian of ``S`` on the free entries, as
    ``(hessp, solve)``: ``v -> H v`` and ``v -> H^{-1} v``.

    Grid masks get ``H`` straight in band storage (bandwidth 142 for 3,754
    entries at 28x28, 8-connected) and a banded Cholesky factor; ``H v``
    then sums the cached pattern's terms. Other masks go through a sparse
    ``H`` (:func:`spd_solver`).
    """
    p, q, gather, coef = pairs.anticommutator_pattern()
    vals = np.asarray(S).ravel()[gather] * coef
    m = pairs.n_pairs

    def hessp(v):
        return np.bincount(p, weights=vals * v[q], minlength=m)

    upper = p <= q
    u = int((q[upper] - p[upper]).max(initial=0))
    factor = None
    if narrow_band(m, u):  # the pattern's duplicate entries add up in the band
        ab = band_storage(p[upper], q[upper], vals[upper], m, u)
        factor = banded_cholesky(ab, overwrite=True)
    if factor is not None:
        return hessp, banded_solver(factor)
    try:
        return hessp, spd_solver(score_matching_hessian(S, pairs))
    except RuntimeError as exc:  # exactly singular
        raise ValueError(
            "The score matching system is singular: the covariance is not "
            "positive definite. Use reg > 0."
        ) from exc


def _masked_score_matching(S, mask, eps, tol, max_iter, init, verbose, system=None):
    """:func:`masked_score_matching`; ``system`` is :func:`score_matching_system`'s
    result when the caller factorised the Hessian already."""
    pairs = as_pairs(mask)
    eps = resolve_eps(eps, S)
    hessp, solve = system if system is not None else score_matching_system(S, pairs)
    theta0 = solve(pairs.is_diag.astype(float))
    if not np.all(np.isfinite(theta0)):
        raise ValueError(
            "The score matching system is singular: the covariance is not "
            "positive definite. Use reg > 0."
        )

    def certificate(theta, lam_min, V):
        return _sm_certificate(hessp, theta, lam_min, V, eps, pairs)["kkt_residual"]

    # The constrained optimum is the projection of the unconstrained one in
    # the metric of the Hessian (J is quadratic): see project_pd.
    theta, pinfo = project_pd(theta0, solve, pairs, eps, tol=tol, max_iter=max_iter,
                              init=init, certificate=certificate, verbose=verbose)
    V = pinfo["dual_factor"]
    precision = pairs.to_dense(theta)
    info = dict(eps=eps, unconstrained_min_eigenvalue=pinfo["unconstrained_min_eigenvalue"],
                n_iter=pinfo["n_iter"])
    # project_pd certified its result with _sm_certificate (``certificate``)
    info.update(kkt_residual=pinfo["kkt_residual"], min_eigenvalue=pinfo["min_eigenvalue"])
    info["dual_factor"] = V
    info["active_rank"] = int(np.sum(np.linalg.norm(V, axis=0) > 1e-8 * max(1.0, np.abs(V).max(initial=0.0))))
    info["converged"] = info["kkt_residual"] <= tol
    if not info["converged"]:
        warnings.warn(
            f"Score matching stopped with KKT residual {info['kkt_residual']:.2e} "
            f"> tol={tol:g} after {info['n_iter']} iterations; increase max_iter.",
            ConvergenceWarning,
        )
    return precision, info


def _sm_certificate(hessp, theta, lam_min, V, eps, pairs):
    """Relative KKT residuals of the constrained score matching problem.

    Stationarity is measured entrywise (its terms are dimensionless):
    ``P_E((S Lambda + Lambda S) / 2)`` is ``H theta / w``, ``hessp(theta)``
    the product with the Hessian assembled from ``S`` (independent of the
    solver's factorisation). Feasibility and complementarity are relative to eps:
    the latter is the Z-weighted mean of the Rayleigh quotients of
    ``Lambda - eps I`` over eps.
    """
    sym_S_Lambda = hessp(theta) / pairs.weights
    stationarity = np.abs(sym_S_Lambda - pairs.is_diag - pairs.gram_entries(V)).max()
    return dict(
        kkt_residual=float(max(stationarity, projection_certificate(pairs, theta, lam_min, V, eps))),
        min_eigenvalue=float(lam_min),
    )


def metric_score_matching(S, A, mask, eps, *, tol=1e-8, max_iter=20000):
    r"""Score matching in the metric ``A``, under ``Lambda >= eps I``: a reference.

    Minimises :math:`\tfrac12\operatorname{tr}(\Lambda A\Lambda S) -
    \operatorname{tr}(A\Lambda)` over precisions supported on ``mask``. It is
    the small-noise limit of conditional NCE with noise
    :math:`N(0, \epsilon^2 A)` (``A = I``: :func:`masked_score_matching`;
    :class:`~skdensity.MaskedGaussianCNCE` documents the others), used to
    measure that limit. The Hessian in the free entries is formed densely
    (``n_pairs**2`` floats: 113 MB for an 8-connected 28x28 grid) and the
    problem solved by projected L-BFGS (:func:`skdensity._pd_constraint.minimize_pd`),
    to a relative KKT residual ``tol``; seconds to a minute at 784 pixels.

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
    info : dict
        As :func:`~skdensity._pd_constraint.minimize_pd`'s.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.masks import grid_mask
    >>> from skdensity._score_matching import masked_score_matching, metric_score_matching
    >>> X = np.random.default_rng(0).normal(size=(500, 9))
    >>> S, mask = np.cov(X.T), grid_mask((3, 3), 4)
    >>> P, _ = metric_score_matching(S, np.eye(9), mask, eps=0.1)
    >>> P_sm, _ = masked_score_matching(S, mask, eps=0.1, tol=1e-10)
    >>> bool(np.allclose(P, P_sm, atol=1e-6))
    True
    """
    pairs = as_pairs(mask)
    r, c, w = pairs.rows, pairs.cols, pairs.weights
    # d^2 / dx_p dx_q of tr(L A L S) / 2 for L = sum_p x_p E_p, symmetrised.
    H = 0.5 * (A[r][:, r] * S[c][:, c] + A[r][:, c] * S[c][:, r]
               + S[r][:, r] * A[c][:, c] + S[r][:, c] * A[c][:, r])
    H *= np.outer(w, 0.5 * w)
    g = w * A[r, c]

    def fg(x):
        Hx = H @ x
        return 0.5 * x @ Hx - g @ x, Hx - g

    # A feasible start: a multiple of the identity above eps and 1 / min var.
    x0 = pairs.from_dense(np.eye(S.shape[0]) * max(2.0 * eps, 1.0 / np.diag(S).min()))
    x, info = minimize_pd(fg, x0, pairs, eps, tol=tol, max_iter=max_iter)
    return pairs.to_dense(x), info
