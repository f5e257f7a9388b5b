r"""Additive Schwarz preconditioners for systems in the free entries of a
masked matrix: score matching's Hessian and covariance selection's Newton
system.

Each feature ``a`` with its neighbours of larger index spans a block of free
entries (every pair among them); the blocks overlap and cover every entry.
The preconditioner is the sum over blocks of the inverse of the system
restricted to the block (Smith, Bjørstad & Gropp 1996), a sparse matrix
whose structure depends on the mask only.
"""

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

__all__ = ["SchwarzBlocks"]


class SchwarzBlocks:
    """The overlapping blocks of a mask's free entries, and the sparse
    pattern of the preconditioner that sums their inverses.

    Attributes
    ----------
    ids : ndarray of shape (n_features, k)
        The free entries of each block, padded by repeating its first.
    valid : ndarray of bool, shape (n_features, k, k)
        The entries of each block's matrix that are real (not padding).
    """

    def __init__(self, pairs):
        self.pairs = pairs
        # Block of feature a: a and its neighbours of larger index (graph rows
        # include a), padded to a common width; then every free pair among them.
        D = pairs.n_features
        counts = np.diff(pairs.indptr)
        owner = np.repeat(np.arange(D), counts)
        forward = pairs.indices >= owner
        owner, node = owner[forward], pairs.indices[forward]
        width = np.bincount(owner, minlength=D)
        slot = np.arange(owner.size) - np.repeat(np.cumsum(width) - width, width)
        nodes = np.full((D, width.max()), -1)
        nodes[owner, slot] = node
        i, j = np.triu_indices(nodes.shape[1])
        u, v = nodes[:, i], nodes[:, j]
        cand = np.where((u >= 0) & (v >= 0), pairs.pair_ids(np.maximum(u, 0), np.maximum(v, 0)), -1)
        k = int((cand >= 0).sum(axis=1).max())
        order = np.argsort(cand < 0, axis=1, kind="stable")[:, :k]  # valid entries first
        ids = np.take_along_axis(cand, order, axis=1)
        short = ids < 0
        # padding repeats the block's first entry: every read stays in the band
        ids[short] = np.broadcast_to(ids[:, :1], ids.shape)[short]
        self.ids = ids
        self.valid = ~short[:, :, None] & ~short[:, None, :]
        self._padding = short[:, :, None] & np.eye(k, dtype=bool)[None]
        index = np.int32 if pairs.n_pairs < 2**31 else np.int64
        self._rows = np.broadcast_to(ids[:, :, None], self.valid.shape)[self.valid].astype(index)
        self._cols = np.broadcast_to(ids[:, None, :], self.valid.shape)[self.valid].astype(index)

    @staticmethod
    @lru_cache(maxsize=8)
    def of(pairs):
        """The blocks of ``pairs``, cached per mask."""
        return SchwarzBlocks(pairs)

    def preconditioner(self, blocks):
        """The sum of the inverses of ``blocks`` (shape ``(n_features, k, k)``,
        the system restricted to each block; padding is ignored), as a sparse
        matrix."""
        blocks = np.where(self.valid, blocks, 0.0)
        blocks[self._padding] = 1.0  # identity where a block is short
        m = self.pairs.n_pairs
        # overlapping blocks' entries add up in the conversion to CSR
        inverse = sp.coo_array(
            (np.linalg.inv(blocks)[self.valid], (self._rows, self._cols)), shape=(m, m)
        )
        return inverse.tocsr()
