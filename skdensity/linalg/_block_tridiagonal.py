r"""Banded masks as block tridiagonal matrices: the inverse on the pattern and
its derivative without a dense inverse.

A symmetric pattern whose free entries satisfy :math:`|a - b| \le u` (an
8-connected 28x28 grid in row-major order: :math:`u = 29`) cut into blocks
of :math:`s \ge u` consecutive features is block tridiagonal, diagonal blocks
:math:`A_I` and sub-diagonal blocks :math:`B_I = \Lambda_{I+1,I}`. With the
Schur complements :math:`S_0 = A_0`, :math:`S_I = A_I - B_{I-1} S_{I-1}^{-1}
B_{I-1}^\top` (block Cholesky), :math:`F_I = S_I^{-1}` and :math:`K_I = B_I
F_I`, the blocks of :math:`W = \Lambda^{-1}` on the block tridiagonal pattern
follow backwards from :math:`W_{N-1,N-1} = F_{N-1}`:

.. math::  W_{I+1,I} = -W_{I+1,I+1} K_I, \qquad
           W_{I,I} = F_I - K_I^\top W_{I+1,I}.

Differentiating both recurrences along a direction :math:`\Delta` on the
pattern gives :math:`dW = -P(W \Delta W)`, the projected Hessian product of
:math:`-\log\det`, again block by block. Both cost :math:`O(N s^3) = O(D
s^2)` instead of the dense inverse's :math:`O(D^3)`: covariance selection's
Newton steps need only these (its gradient, Hessian products and
preconditioner read :math:`W` within the band).
"""

from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
import scipy.linalg as la

__all__ = [
    "SelectedInverse",
    "BlockTridiagonal",
    "block_layout",
    "selected_inverse",
    "selected_inverse_derivative",
]

# Smallest block: below it the recurrences' Python steps cost more than
# their small matrix products.
_MIN_BLOCK = 16


class SelectedInverse(NamedTuple):
    """:func:`selected_inverse`'s recurrence: inverse Schur complements ``F``,
    ``K_I = B_I F_I``, and the inverse's diagonal ``W`` and sub-diagonal ``C``
    blocks (its derivative reuses all four)."""

    F: np.ndarray
    K: np.ndarray
    W: np.ndarray
    C: np.ndarray

    @property
    def blocks(self):
        """``(W, C)``: the inverse on the block tridiagonal pattern."""
        return self.W, self.C


@lru_cache(maxsize=8)
def block_layout(pairs):
    """A :class:`BlockTridiagonal` layout of ``pairs`` where it pays, else
    None; cached per mask.

    A Hessian product costs about ``10 D s^2`` flops in blocks of ``s``
    against ``4 D^2 k`` with a dense inverse (``k`` free entries per row of
    the mask): blocks are used when ``s^2 <= D k / 2``, as for grid masks.
    Wider masks keep the dense inverse.
    """
    D = pairs.n_features
    bandwidth = int((pairs.cols - pairs.rows).max(initial=0))
    if bandwidth == 0 or D < 2 * _MIN_BLOCK:
        return None
    bandwidth = max(bandwidth, _MIN_BLOCK)
    n_blocks, s = _blocks_for(D, bandwidth)
    per_row = (2 * pairs.n_pairs - D) / D + 1
    if n_blocks < 2 or s * s > D * per_row / 2:
        return None
    return BlockTridiagonal(pairs, bandwidth)


def _blocks_for(n_features, bandwidth):
    """``D // bandwidth`` blocks (at least one) of equal size ``ceil(D / n_blocks)``,
    which is at least ``bandwidth``."""
    n_blocks = max(1, n_features // max(int(bandwidth), 1))
    return n_blocks, -(-n_features // n_blocks)


class BlockTridiagonal:
    """Uniform blocks of ``s >= bandwidth`` features for a banded pattern.

    Parameters
    ----------
    pairs : MaskPairs
        The free entries; every one must satisfy ``cols - rows <= bandwidth``.
    bandwidth : int
        The pattern's bandwidth ``max(cols - rows)``.

    Notes
    -----
    ``D // bandwidth`` blocks of equal size ``s = ceil(D / n_blocks)``: the
    last is padded with identity rows, which the recurrences leave
    uncoupled.
    """

    def __init__(self, pairs, bandwidth):
        D = pairs.n_features
        n_blocks, s = _blocks_for(D, bandwidth)
        self.n_features, self.n_blocks, self.block_size = D, n_blocks, s
        rows, cols = pairs.rows, pairs.cols
        I, i = np.divmod(rows, s)
        J, j = np.divmod(cols, s)
        if np.any(J - I > 1):
            raise ValueError("the pattern is wider than its blocks")
        same = J == I
        base = I * s * s
        # Pairs within a diagonal block: both triangles; across: B_I[j, i].
        self._diag_pairs = np.flatnonzero(same)
        self._diag_upper = (base + i * s + j)[same]
        self._diag_lower = (base + j * s + i)[same]
        self._off_pairs = np.flatnonzero(~same)
        self._off_at = (base + j * s + i)[~same]
        pad = np.arange(D, n_blocks * s)
        self._pad_at = (pad // s) * s * s + (pad % s) * (s + 1)

    def blocks(self, theta, pad=1.0):
        """The blocks ``(A, B)`` of the symmetric matrix with free entries
        ``theta``, shapes ``(N, s, s)`` and ``(N - 1, s, s)``; the padding's
        diagonal is ``pad`` (1 for a matrix, 0 for a direction)."""
        N, s = self.n_blocks, self.block_size
        A = np.zeros(N * s * s)
        A[self._diag_upper] = theta[self._diag_pairs]
        A[self._diag_lower] = theta[self._diag_pairs]
        A[self._pad_at] = pad
        B = np.zeros(max(N - 1, 0) * s * s)
        B[self._off_at] = theta[self._off_pairs]
        return A.reshape(N, s, s), B.reshape(-1, s, s)

    def entries(self, W, C):
        """The free entries of the symmetric matrix with blocks ``(W, C)``."""
        out = np.empty(self._diag_pairs.size + self._off_pairs.size)
        out[self._diag_pairs] = W.ravel()[self._diag_upper]
        out[self._off_pairs] = C.ravel()[self._off_at]
        return out

    def read(self, W, C, u, v):
        """The symmetric matrix with blocks ``(W, C)`` at ``(u, v)`` (index
        arrays of one shape, every pair within the block tridiagonal pattern)."""
        s = self.block_size
        u, v = np.broadcast_arrays(u, v)
        I, i = np.divmod(u, s)
        J, j = np.divmod(v, s)
        if np.any(np.abs(I - J) > 1):
            raise ValueError("an entry outside the block tridiagonal pattern")
        same, below = I == J, I > J  # C_J = W_{J+1, J}: (i, j) there
        above = ~same & ~below  # the transpose of a C block
        out = np.empty(u.shape)
        out[same] = W.ravel()[((I * s + i) * s + j)[same]]
        out[below] = C.ravel()[((J * s + i) * s + j)[below]]
        out[above] = C.ravel()[((I * s + j) * s + i)[above]]
        return out

    @cached_property
    def _dense_index(self):
        """Where :meth:`to_dense` puts the blocks' entries (built on first use)."""
        D, N, s = self.n_features, self.n_blocks, self.block_size
        i, j = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
        start = np.arange(N)[:, None, None] * s
        r, c = (start + i).ravel(), (start + j).ravel()
        keep = (r < D) & (c < D)
        ro, co = (start[:-1] + s + i).ravel(), (start[:-1] + j).ravel()
        keep_o = ro < D  # co < ro
        return (
            (r * D + c)[keep],
            np.flatnonzero(keep),
            (ro * D + co)[keep_o],
            (co * D + ro)[keep_o],
            np.flatnonzero(keep_o),
        )

    def to_dense(self, W, C):
        """The ``(D, D)`` matrix equal to ``W, C`` on the block tridiagonal
        pattern and zero outside it."""
        D = self.n_features
        at, take, at_low, at_up, take_o = self._dense_index
        out = np.zeros(D * D)
        out[at] = W.ravel()[take]
        off = C.ravel()[take_o]
        out[at_low] = off
        out[at_up] = off
        return out.reshape(D, D)


def selected_inverse(A, B):
    """``inv(Lambda)`` on the block tridiagonal pattern, and the recurrence's
    intermediates.

    Parameters
    ----------
    A : ndarray of shape (N, s, s)
        Symmetric diagonal blocks.
    B : ndarray of shape (N - 1, s, s)
        Sub-diagonal blocks ``Lambda[I + 1, I]``.

    Returns
    -------
    factors : SelectedInverse or None
        None if ``Lambda`` is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.linalg import MaskPairs, block_layout, selected_inverse
    >>> from skdensity.masks import grid_mask
    >>> pairs = MaskPairs(grid_mask((20, 20), 8))
    >>> P = pairs.to_dense(pairs.is_diag * 9.0 - ~pairs.is_diag)  # 9 on the diagonal, -1 off it
    >>> layout = block_layout(pairs)
    >>> F, K, W, C = selected_inverse(*layout.blocks(pairs.from_dense(P)))
    >>> bool(np.allclose(layout.entries(W, C), pairs.from_dense(np.linalg.inv(P))))
    True
    """
    N, s, _ = A.shape
    F = np.empty_like(A)
    K = np.empty_like(B)
    lower = np.tri(s, k=-1, dtype=bool)
    for I in range(N):
        schur = A[I] - K[I - 1] @ B[I - 1].T if I else A[0]
        # LAPACK directly: a Cholesky factor proves the block (hence Lambda,
        # by induction) positive definite, and potri inverts from it.
        c, info = la.lapack.dpotrf(schur, lower=0, clean=0)
        if info:
            return None
        inv, info = la.lapack.dpotri(c, lower=0)
        if info:
            return None
        inv[lower] = inv.T[lower]  # potri fills one triangle
        F[I] = inv
        if I < N - 1:
            K[I] = B[I] @ inv
    W = np.empty_like(A)
    C = np.empty_like(B)
    W[N - 1] = F[N - 1]
    for I in range(N - 2, -1, -1):
        C[I] = -(W[I + 1] @ K[I])
        W[I] = F[I] - K[I].T @ C[I]
    return SelectedInverse(F, K, W, C)


def selected_inverse_derivative(factors, dA, dB):
    """Derivative of :func:`selected_inverse` along ``(dA, dB)``: the blocks
    of ``-P(W Delta W)`` on the block tridiagonal pattern.

    Parameters
    ----------
    factors : SelectedInverse
        :func:`selected_inverse`'s result at ``Lambda``.
    dA, dB : ndarray
        Blocks of the symmetric direction ``Delta``, as for ``A, B``.

    Returns
    -------
    dW, dC : ndarray
        Diagonal and sub-diagonal blocks of the derivative.
    """
    F, K, W, C = factors
    N = F.shape[0]
    Kt = K.transpose(0, 2, 1)
    # Forwards: dS_I = dA_I - P - P' + K dS_{I-1} K' with P = dB K' (index I - 1
    # on the right); whatever does not depend on dS is formed for all blocks at
    # once, the loops keep only the recurrence (products written in place).
    P = dB @ Kt
    T = dA[1:] - P
    T -= P.transpose(0, 2, 1)
    dS = np.empty_like(F)
    G = np.empty_like(K)  # K_I dS_I
    dS[0] = dA[0]
    for I in range(1, N):
        np.matmul(K[I - 1], dS[I - 1], out=G[I - 1])
        np.matmul(G[I - 1], Kt[I - 1], out=dS[I])
        dS[I] += T[I - 1]
    dF = F @ dS @ F
    np.negative(dF, out=dF)
    dK = (dB - G) @ F[:-1]
    # Backwards: dC_I = -dW_{I+1} K_I - W_{I+1} dK_I,
    #            dW_I = dF_I - dK_I' C_I - K_I' dC_I.
    R = W[1:] @ dK
    U = dF[:-1] - dK.transpose(0, 2, 1) @ C
    dW = np.empty_like(F)
    dC = np.empty_like(K)
    dW[N - 1] = dF[N - 1]
    for I in range(N - 2, -1, -1):
        np.matmul(dW[I + 1], K[I], out=dC[I])
        dC[I] += R[I]
        np.negative(dC[I], out=dC[I])
        np.matmul(Kt[I], dC[I], out=dW[I])
        np.subtract(U[I], dW[I], out=dW[I])
    return dW, dC
