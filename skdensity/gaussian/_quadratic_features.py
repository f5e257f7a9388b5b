"""The design matrix of noise-contrastive estimation for a masked Gaussian.

A Gaussian's unnormalised log-density is linear in the free entries of its
precision, ``-u' Lambda(theta) u / 2 = Phi(u) @ theta``, so NCE and
conditional NCE are logistic regressions on these quadratic features.
"""

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ..utils._threads import on_two_threads

__all__ = ["QuadraticFeatures", "quadratic_features"]


def quadratic_features(pairs, U, direction=None, scale=0.0, centre=None, block=8192):
    """Features ``Phi`` with ``-u' Lambda(theta) u / 2 = Phi @ theta``.

    Row ``i`` holds ``-w_p u_a u_b / 2`` for every free entry
    ``p = (a, b)``: a Gaussian's unnormalised log-density is linear in
    ``theta``, so objectives such as NCE are logistic regressions on
    these features. With ``centre``, the features of ``u - centre``;
    with ``direction``, those of ``u`` minus those of ``u + scale *
    direction`` (conditional NCE's pairs). Memory: ``n_samples *
    n_pairs`` floats, returned as a Fortran-ordered array.

    Built for blocks of ``block`` samples, one pair at a time from
    contiguous rows of the block's transpose, written in place, with no
    temporary of the samples' or the result's size.
    """
    U = np.asarray(U, dtype=float)
    n, D = U.shape
    out = np.empty((pairs.n_pairs, n))
    weight = -0.5 * pairs.weights
    rows, cols = pairs.rows, pairs.cols
    block = max(1, min(block, n))
    shift = 0.0 if centre is None else np.reshape(centre, (-1, 1))
    # Per-thread buffers (np.empty touches no memory until used).
    buffers = [
        (np.empty((D, block)), None if direction is None else np.empty((D, block)), np.empty(block))
        for _ in range(2)
    ]

    def fill(worker, sl):
        UT, VT, tmp = buffers[worker]
        k = sl.stop - sl.start
        u, t = UT[:, :k], tmp[:k]
        np.subtract(U[sl].T, shift, out=u)
        if VT is not None:
            v = VT[:, :k]
            np.multiply(direction[sl].T, scale, out=v)
            v += u
        for p in range(pairs.n_pairs):
            row = out[p, sl]
            np.multiply(u[rows[p]], u[cols[p]], out=row)
            if VT is not None:
                np.multiply(v[rows[p]], v[cols[p]], out=t)
                row -= t
            row *= weight[p]

    on_two_threads(n, block, fill)
    return out.T


class QuadraticFeatures(LinearOperator):
    """The NCE design matrix ``Phi`` as a linear operator: ``Phi @ theta``,
    ``Phi.T @ d``.

    Row ``i`` holds the quadratic features of ``U[i] - centre`` (see
    :func:`quadratic_features`), minus those of
    ``U[i] - centre + scale * direction[i]`` when a direction is given
    (conditional NCE's pairs). The matrix has ``n_samples * n_pairs``
    entries. It is stored when it fits in ``max_bytes`` (then each product is
    one BLAS pass) and otherwise recomputed in row chunks on every product
    from the samples themselves (:meth:`MaskPairs.quadratic_forms`,
    :meth:`MaskPairs.col_dots`) on two threads: memory stays at the size of
    the data, at a few times the cost of a stored product.
    """

    def __init__(
        self, pairs, U, direction=None, scale=0.0, *, centre=None, max_bytes=2**30, chunk=2048
    ):
        self.pairs = pairs
        self.U = np.ascontiguousarray(U, dtype=float)
        self.centre = None if centre is None else np.asarray(centre, dtype=float)
        self.direction = None if direction is None else np.ascontiguousarray(direction, dtype=float)
        self.scale = float(scale)
        self.chunk = chunk
        super().__init__(dtype=np.float64, shape=(self.U.shape[0], pairs.n_pairs))
        self.stored = self.shape[0] * self.shape[1] * 8 <= max_bytes
        self._Phi = (
            quadratic_features(pairs, self.U, self.direction, self.scale, self.centre)
            if self.stored
            else None
        )

    def _rows(self, sl):
        """The (centred) samples of a row block and their shifted copies (or None)."""
        Uc = self.U[sl] if self.centre is None else self.U[sl] - self.centre
        Vc = None if self.direction is None else Uc + self.scale * self.direction[sl]
        return Uc, Vc

    def _matvec(self, theta):
        if self._Phi is not None:
            return self._Phi @ theta
        out = np.empty(self.shape[0])

        def work(_, sl):
            out[sl] = sum(
                sign * self.pairs.quadratic_forms(W, theta)
                for sign, W in zip((1.0, -1.0), self._rows(sl))
                if W is not None
            )

        on_two_threads(self.shape[0], self.chunk, work)
        return -0.5 * out

    def _rmatvec(self, d):
        """``Phi.T @ d``: the d-weighted second moments on the mask."""
        if self._Phi is not None:
            return self._Phi.T @ d

        def work(_, sl):
            return sum(
                sign * self.pairs.col_dots(W, d[sl, None] * W)
                for sign, W in zip((1.0, -1.0), self._rows(sl))
                if W is not None
            )

        parts = [
            part for results in on_two_threads(self.shape[0], self.chunk, work) for part in results
        ]
        return -0.5 * self.pairs.weights * np.sum(parts, axis=0)
