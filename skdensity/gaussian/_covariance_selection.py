r"""Maximum likelihood Gaussian with a masked precision (covariance selection):
the solver, its public function and :class:`MaskedGaussianMLE`.

Dempster's covariance selection maximises :math:`\log\det\Lambda -
\operatorname{tr}(S\Lambda)` over positive definite :math:`\Lambda` supported
on the mask. The problem is strictly concave when :math:`S \succ 0`, and its
optimum matches the data exactly on the mask: :math:`(\Lambda^{-1})_{ab} =
S_{ab}` for every allowed pair.

**Method: damped Newton.** In the free entries :math:`x` of :math:`\Lambda`
the gradient of :math:`F = -\log\det\Lambda + \operatorname{tr}(S\Lambda)` is
:math:`w \odot (S - \Sigma)_E` with :math:`\Sigma = \Lambda^{-1}` and the
Hessian is :math:`\tfrac12 w_p w_q (\Sigma_{ac}\Sigma_{bd} + \Sigma_{ad}\Sigma_{bc})`
for pairs :math:`p=(a,b), q=(c,d)`. Small problems form and factorise it;
larger ones solve the Newton system by conjugate gradients with Hessian
products :math:`P_E(\Sigma \Delta \Sigma)` and an additive Schwarz
preconditioner (:class:`_SchwarzPreconditioner`). Newton reads
:math:`\Sigma` only on the mask, so on grid masks the inverse on the block
tridiagonal pattern and its derivative replace the dense inverse
(:mod:`skdensity.linalg._block_tridiagonal`). A line search on the Cholesky
factor keeps every iterate positive definite; features the data decouple
are split off and solved in closed form (:mod:`._decoupling`). See
:doc:`/design` for why this method.
"""

import warnings
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from ..linalg import (
    SchwarzBlocks,
    as_pairs,
    block_layout,
    bottom_eig,
    selected_inverse,
    selected_inverse_derivative,
)
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
from ._score_matching import masked_score_matching

__all__ = ["CovarianceSelectionInfo", "MaskedGaussianMLE", "covariance_selection"]


@dataclass(frozen=True)
class CovarianceSelectionInfo:
    """What :func:`covariance_selection` reports besides the precision.

    Attributes
    ----------
    n_iter : int
        Newton steps (the most of any decoupled block).
    kkt_residual : float
        ``max |(inv(Lambda) - S)_mask| / max(diag S)`` (the certificate).
    min_eigenvalue : float
        Smallest eigenvalue of the estimate.
    converged : bool
        Whether ``kkt_residual <= tol``.
    """

    n_iter: int
    kkt_residual: float
    min_eigenvalue: float
    converged: bool


def covariance_selection(
    S, mask, *, tol=1e-8, max_iter=100, init=None, max_dense_pairs=1000, verbose=0
):
    """Maximum likelihood precision supported on ``mask``.

    Parameters
    ----------
    S : ndarray or sparse matrix of shape (n_features, n_features)
        Positive definite second-moment matrix of the centred data. A
        sparse ``S`` must hold it on the mask's two-hop neighbourhood (the
        score matching start reads it there); the precision is then sparse.
    mask : array-like or sparse matrix of bool, shape (n_features, n_features)
        Symmetric sparsity pattern with a ``True`` diagonal.
    tol : float, default=1e-8
        Target for the KKT residual ``max |(inv(Lambda) - S)_E| / max(diag S)``.
    max_iter : int, default=100
        Maximum number of Newton steps.
    init : ndarray or sparse matrix of shape (n_features, n_features), default=None
        Positive definite precision supported on ``mask`` to start from;
        by default the score matching estimate (to a loose tolerance).
    max_dense_pairs : int, default=1000
        Largest number of free entries for which the Newton system is formed
        densely; above it, preconditioned conjugate gradients.
    verbose : int, default=0
        Print progress when positive.

    Returns
    -------
    precision : ndarray or csr_array of shape (n_features, n_features)
        Sparse when ``S`` is.
    info : CovarianceSelectionInfo

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import covariance_selection
    >>> from skdensity.masks import grid_mask
    >>> X = np.random.default_rng(0).normal(size=(500, 9))
    >>> P, info = covariance_selection(np.cov(X.T), grid_mask((3, 3), 4))
    >>> bool(info.kkt_residual < 1e-8)
    True
    """
    with factorisation_errors_as_value_errors():
        S, pairs = check_moments_and_mask(S, mask)
        D = pairs.n_features
        if init is not None:
            init = init if sp.issparse(init) else np.asarray(init, dtype=float)
            if init.shape != (D, D):
                raise ValueError(
                    f"init must be a ({D}, {D}) precision matrix, got shape {init.shape}."
                )
            init = pairs.from_dense(init)
        theta, info = _covariance_selection(
            S,
            pairs,
            tol=tol,
            max_iter=max_iter,
            init=init,
            max_dense_pairs=max_dense_pairs,
            verbose=verbose,
        )
    return (pairs.to_sparse(theta) if sp.issparse(S) else pairs.to_dense(theta)), info


def _covariance_selection(
    S, pairs, *, tol=1e-8, max_iter=100, init=None, max_dense_pairs=1000, verbose=0
):
    """:func:`covariance_selection` from checked inputs, in the free entries
    ``theta`` (``init`` too), with LAPACK's errors left as they are."""
    c2 = unit_scale(S)
    if c2 != 1.0:  # solve in units where the mean variance is about 1
        theta, info = _covariance_selection(
            S / c2,
            pairs,
            tol=tol,
            max_iter=max_iter,
            init=None if init is None else init * c2,
            max_dense_pairs=max_dense_pairs,
            verbose=verbose,
        )
        return theta / c2, replace(info, min_eigenvalue=info.min_eigenvalue / c2)
    D = pairs.n_features
    # The same KKT scale for every span: the certificate is the whole problem's.
    scale = np.abs(diagonal(S)).max()
    S_E = read_entries(S, pairs.rows, pairs.cols, "on the mask")
    if init is not None and _objective(init, S_E, pairs)[1] is None:
        raise ValueError("init must be a positive definite precision matrix.")
    # Decoupled features are exact in closed form and their edges need no solving.
    labels, spans = decoupled_spans(pairs, S_E)
    if verbose and spans != [(0, D)]:
        print(
            f"[covariance selection] solving features {spans}, {labels.max() + 1} decoupled blocks"
        )
    theta = np.zeros(pairs.n_pairs)
    n_iter, kkt, lam_min = 0, 0.0, np.inf
    alone = np.ones(D, dtype=bool)
    for lo, hi in spans:
        alone[lo:hi] = False
        span = slice(lo, hi)
        if hi - lo == D and labels.max() == 0:
            span_pairs = pairs
        else:
            span_pairs = as_pairs(pairs.submask(np.arange(lo, hi), labels))
        at = pairs.pair_ids(lo + span_pairs.rows, lo + span_pairs.cols)
        newton = _Newton(S[span, span], span_pairs, scale, max_dense_pairs, verbose)
        theta[at], span_info = newton.run(tol, max_iter, None if init is None else init[at])
        n_iter = max(n_iter, span_info.n_iter)
        kkt = max(kkt, span_info.kkt_residual)
        lam_min = min(lam_min, span_info.min_eigenvalue)
    alone = np.flatnonzero(alone)
    if alone.size:
        variances = lone_variances(S, alone)
        theta[pairs.pair_ids(alone, alone)] = 1.0 / variances  # exact: nothing to couple to
        lam_min = min(lam_min, float(np.min(1.0 / variances)))
    info = CovarianceSelectionInfo(
        n_iter=n_iter, kkt_residual=kkt, min_eigenvalue=lam_min, converged=bool(kkt <= tol)
    )
    if not info.converged:
        warn_unconverged(
            "Covariance selection",
            kkt,
            tol=tol,
            n_iter=n_iter,
            max_iter=max_iter,
            steps="Newton steps",
        )
    return theta, info


def check_enough_samples(pairs, n_samples, assume_centered):
    """A clear error when ``n_samples`` may not determine the maximum
    likelihood precision without a variance floor.

    The estimate exists when ``S`` restricted to every clique of a chordal
    cover of the mask is positive definite (Dempster 1972; Grone et al.
    1984). The band of the mask in its own ordering is such a cover, with
    cliques of ``bandwidth + 1`` features, positive definite for data in
    general position once the centred samples span that many dimensions:
    far fewer samples than features on an image grid (about its width).
    """
    clique = int((pairs.cols - pairs.rows).max(initial=0)) + 1
    needed = clique + (not assume_centered)
    if n_samples < needed:
        raise ValueError(
            f"Maximum likelihood on this mask needs at least {needed} samples when "
            f"reg=0 (the band of the mask has cliques of {clique} features), got "
            f"{n_samples}. Add samples or set reg > 0."
        )


class _Newton:
    """Damped Newton on one block of coupled features."""

    def __init__(self, S, pairs, scale, max_dense_pairs, verbose):
        self.S, self.pairs, self.scale = S, pairs, scale
        self.S_E = read_entries(S, pairs.rows, pairs.cols, "on the mask")
        self.dense = pairs.n_pairs <= max_dense_pairs
        # Grid masks: the inverse on the block tridiagonal pattern is all
        # Newton needs (gradient, Hessian products, preconditioner).
        self.layout = None if self.dense else block_layout(pairs)
        self.verbose = verbose

    def _start(self, init):
        if init is not None:
            # A user's start restricted to a span is positive definite: dropping
            # the edges between decoupled blocks leaves principal submatrices.
            return init
        # Newton needs a positive definite start, not an accurate one: score
        # matching to a loose tolerance.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start, _ = masked_score_matching(self.S, self.pairs, tol=1e-2)
        return self.pairs.from_dense(start)

    def _inverse(self, x, factor):
        """``inv(Lambda)`` where Newton reads it: on the block tridiagonal
        pattern when the recurrence applies, else dense."""
        if self.layout is not None:
            blocks = selected_inverse(*self.layout.blocks(x))
            if blocks is not None:
                return _BlockInverse(blocks, self.layout, self.pairs)
        return _DenseInverse(factor.inverse(), self.pairs)

    def run(self, tol, max_iter, init):
        """The precision and its :class:`CovarianceSelectionInfo` (unwarned)."""
        pairs, S_E = self.pairs, self.S_E
        x = self._start(init)
        f, factor = _objective(x, S_E, pairs)
        n_iter, precond = 0, None
        while True:
            inverse = self._inverse(x, factor)
            residual = inverse.entries() - S_E
            kkt = np.abs(residual).max() / self.scale
            if self.verbose:
                print(
                    f"[covariance selection] iteration {n_iter}: objective {f:.10g}, KKT {kkt:.2e}"
                )
            if kkt <= tol or n_iter >= max_iter:
                break
            grad = pairs.weights * -residual
            if self.dense:
                step = _newton_direction_dense(inverse.Sigma, grad, pairs)
            else:
                # Inexact Newton: the forcing term is the KKT residual itself
                # (quadratic convergence), never tighter than tol requires.
                rtol = max(min(0.5, kkt), 0.1 * tol / kkt)
                if precond is None or kkt > 0.05:
                    # Near the optimum Lambda moves by O(KKT): the previous
                    # step's preconditioner serves as well.
                    precond = _SchwarzPreconditioner.of(pairs).matrix(inverse)
                step = _newton_direction_cg(inverse.hessp, grad, rtol, precond)
            t, f_new, factor_new = _line_search(x, step, f, grad @ step, S_E, pairs)
            if factor_new is None:
                break  # no PD progress possible; report the residual
            x, f, factor = x + t * step, f_new, factor_new
            n_iter += 1
        lam_min = bottom_eig(pairs.to_sparse(x))[0][0]
        info = CovarianceSelectionInfo(
            n_iter=n_iter,
            kkt_residual=float(kkt),
            min_eigenvalue=float(lam_min),
            converged=bool(kkt <= tol),
        )
        return x, info


class _DenseInverse:
    """``Sigma = inv(Lambda)`` as a dense matrix."""

    def __init__(self, Sigma, pairs):
        self.Sigma, self.pairs = Sigma, pairs

    def entries(self):
        return self.pairs.from_dense(self.Sigma)

    def at(self, u, v):
        return self.Sigma[u, v]

    def hessp(self, v):
        """``w * P_E(Sigma Delta(v) Sigma)``: a sparse-by-dense product and
        dots along the mask's diagonals."""
        pairs = self.pairs
        return pairs.weights * pairs.col_dots(self.Sigma, pairs.to_sparse(v) @ self.Sigma)


class _BlockInverse:
    """``Sigma = inv(Lambda)`` on the block tridiagonal pattern, from
    :func:`~skdensity.linalg.selected_inverse`'s recurrence."""

    def __init__(self, factors, layout, pairs):
        self.factors, self.layout, self.pairs = factors, layout, pairs

    def entries(self):
        return self.layout.entries(*self.factors.blocks)

    def at(self, u, v):
        """``Sigma[u, v]`` within the block tridiagonal pattern (all the
        preconditioner reads), from the blocks."""
        return self.layout.read(*self.factors.blocks, u, v)

    def hessp(self, v):
        """The same product as :meth:`_DenseInverse.hessp`: the derivative of
        the inverse on the pattern is ``-P(Sigma Delta Sigma)``."""
        dW, dC = selected_inverse_derivative(self.factors, *self.layout.blocks(v, 0.0))
        return -self.pairs.weights * self.layout.entries(dW, dC)


def _objective(x, S_E, pairs):
    """F(x) and the Cholesky factor of Lambda, or (inf, None) if not PD."""
    factor = pairs.cholesky(x)
    if factor is None:
        return np.inf, None
    return -factor.log_det() + np.sum(pairs.weights * S_E * x), factor


def _line_search(x, step, f, slope, S_E, pairs):
    """A step length along the Newton direction ``step`` (``slope = grad @ step``)
    that keeps Lambda positive definite, and the objective and factor there.

    ``F`` is self-concordant, so once the Newton decrement ``-slope`` is
    below 1/16 the full step decreases it and converges quadratically (Boyd
    & Vandenberghe, 2004, 9.6.4): it is taken as it is. An Armijo test there
    would compare decreases below ``F``'s rounding near the optimum and
    stall. Before, backtracking enforces sufficient decrease, and the
    minimiser of the quadratic through ``F(0)``, ``F'(0)`` and the accepted
    trial is tried as well (one more factorisation; the better is kept):
    far from the optimum the best step is often not the unit one.
    """
    t = 1.0
    while True:
        f_new, chol_new = _objective(x + t * step, S_E, pairs)
        if chol_new is not None and -1 / 16 < slope < 0:
            return t, f_new, chol_new
        if f_new <= f + 1e-4 * t * slope or t < 1e-10:
            break
        t *= 0.5
    if chol_new is not None:
        curvature = (f_new - f - slope * t) / t**2
        if curvature > 0:
            t2 = min(max(-slope / (2 * curvature), 0.25 * t), 4 * t)
            f2, chol2 = _objective(x + t2 * step, S_E, pairs)
            if f2 < f_new:
                t, f_new, chol_new = t2, f2, chol2
    return t, f_new, chol_new


def _newton_direction_dense(Sigma, grad, pairs):
    Sa, Sb = Sigma[pairs.rows], Sigma[pairs.cols]
    hess = Sa[:, pairs.rows] * Sb[:, pairs.cols]
    hess += Sa[:, pairs.cols] * Sb[:, pairs.rows]
    del Sa, Sb
    w = pairs.weights
    hess *= np.outer(w, 0.5 * w)
    return -la.cho_solve(la.cho_factor(hess, lower=True, overwrite_a=True), grad)


def _newton_direction_cg(hessp, grad, rtol, precond, max_cg=500):
    r"""Newton direction by conjugate gradients with Hessian products
    ``hessp``, preconditioned by ``precond`` (a sparse matrix)."""
    x = np.zeros_like(grad)
    r = -grad
    z = precond @ r
    p = z.copy()
    rz = r @ z
    stop = rtol * np.linalg.norm(grad)
    for _ in range(max_cg):
        Hp = hessp(p)
        alpha = rz / (p @ Hp)
        x += alpha * p
        r -= alpha * Hp
        if np.linalg.norm(r) <= stop:
            break
        z = precond @ r
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    return x


class _SchwarzPreconditioner:
    r"""Additive Schwarz preconditioner for covariance selection's Newton system.

    The Hessian at a precision with inverse ``Sigma`` is ``H_pq = w_p w_q
    (Sigma_ac Sigma_bd + Sigma_ad Sigma_bc) / 2`` for ``p = (a, b)``, ``q
    = (c, d)``, read on the blocks of :class:`~skdensity.linalg.SchwarzBlocks`.
    """

    def __init__(self, pairs):
        self.blocks = SchwarzBlocks.of(pairs)
        ids = self.blocks.ids
        a, b = pairs.rows[ids], pairs.cols[ids]
        # Sigma at these four (row, column) index grids, broadcast (D, k, k).
        self.gather = [(u[:, :, None], v[:, None, :]) for u, v in ((a, a), (b, b), (a, b), (b, a))]
        self.weight = 0.5 * pairs.weights[ids][:, :, None] * pairs.weights[ids][:, None, :]

    @staticmethod
    @lru_cache(maxsize=8)
    def of(pairs):
        """The preconditioner's structure for ``pairs``, cached per mask."""
        return _SchwarzPreconditioner(pairs)

    def matrix(self, inverse):
        """The preconditioner at a precision whose inverse ``Sigma`` is
        ``inverse`` (read within the mask's band only), as a sparse matrix."""
        g = self.gather
        blocks = inverse.at(*g[0]) * inverse.at(*g[1])
        blocks += inverse.at(*g[2]) * inverse.at(*g[3])
        blocks *= self.weight
        return self.blocks.preconditioner(blocks)


class MaskedGaussianMLE(BaseMaskedGaussian):
    r"""Gaussian Markov random field fitted by maximum likelihood.

    Dempster's covariance selection: maximise
    :math:`\log\det\Lambda - \operatorname{tr}(S\Lambda)` over positive
    definite precisions supported on the mask, by damped Newton from the
    score matching estimate (see :func:`covariance_selection`).
    It is the within-family reference for score matching and NCE, solved to
    a KKT residual of ``tol``.

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
    assume_centered : bool, default=False
        If True, the mean is taken to be zero.
    tol : float, default=1e-8
        Target KKT residual ``max |(inv(precision_) - S)_mask| / max(diag S)``.
    max_iter : int, default=100
        Maximum number of Newton steps.
    verbose : int, default=0
        Print solver progress when positive.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Mean.
    precision_ : scipy.sparse.csr_array of shape (n_features, n_features)
        Estimated precision, zero outside ``mask_`` (sparse at every size).
    covariance_ : ndarray of shape (n_features, n_features)
        Its inverse; equals the regularised empirical covariance on the
        mask. Formed on access: ``D^2`` floats, refused with a clear error
        where they would not fit in memory.
    precision_cholesky_ : ndarray of shape (n_features, n_features)
        Dense lower Cholesky factor of ``precision_``, formed on access like
        ``covariance_``. Scoring and sampling use a banded factor instead.
    empirical_covariance_ : scipy.sparse.csr_array of shape (n_features, n_features)
        Covariance of the data seen (without ``reg``) on the mask's two-hop
        neighbourhood, all the solvers read (the 5x5 window of a grid
        mask); ``partial_fit`` merges it exactly.
    mask_ : scipy.sparse.csr_array of bool, shape (n_features, n_features)
        The mask used.
    image_shape_ : tuple of int
        The image shape used.
    kkt_residual_ : float
        KKT residual (optimality certificate).
    min_eigenvalue_ : float
        Smallest eigenvalue of ``precision_``.
    n_iter_ : int
        Newton steps used.
    n_samples_seen_ : int
        Samples seen by ``fit`` / ``partial_fit``.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    MaskedGaussianSM : Score matching on the same mask.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity import MaskedGaussianMLE
    >>> X = np.random.default_rng(0).normal(size=(200, 16))
    >>> mle = MaskedGaussianMLE(connectivity=4).fit(X)      # 4x4 image
    >>> bool(mle.kkt_residual_ < 1e-8)
    True
    """

    def __init__(
        self,
        *,
        image_shape=None,
        connectivity=8,
        mask=None,
        reg=0.01,
        assume_centered=False,
        tol=1e-8,
        max_iter=100,
        verbose=0,
    ):
        self.image_shape = image_shape
        self.connectivity = connectivity
        self.mask = mask
        self.reg = reg
        self.assume_centered = assume_centered
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def _estimate_precision(self, S, structure, warm_start, data):
        if self.reg == 0:
            check_enough_samples(structure.pairs, data.n_samples, self.assume_centered)
        # Cold starts begin at the score matching estimate (the default).
        precision, info = covariance_selection(
            S,
            structure.pairs,
            tol=self.tol,
            max_iter=self.max_iter,
            init=self.precision_ if warm_start else None,
            verbose=self.verbose,
        )
        return MaskedFit(
            precision=precision,
            n_iter=info.n_iter,
            kkt_residual=info.kkt_residual,
            min_eigenvalue=info.min_eigenvalue,
        )
