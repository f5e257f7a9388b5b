"""Coordinates for symmetric matrices supported on a mask.

Every solver works in the vector ``theta`` of free entries ``Lambda[a, b]``
with ``a <= b`` and ``mask[a, b]``. With ``E_p`` the symmetric unit matrix of
pair ``p`` (one entry on the diagonal, two off it), the Frobenius inner
product of two masked matrices is ``sum(weights * x * y)`` with weight 1 on
the diagonal and 2 off it.
"""

import hashlib
import threading

import numpy as np
import scipy.sparse as sp

from ._cholesky import CholeskyFactor

__all__ = ["MaskPairs", "as_pairs", "diagonal_segments", "matrix_entries"]

_PAIRS_CACHE = {}
_PAIRS_LOCK = threading.Lock()  # fits and scores may run in threads (joblib, services)


def as_pairs(mask):
    """``mask`` as MaskPairs, reusing it when a solver passes one along.

    Index structures of recent masks are cached by content: building one
    costs a visible share of a fit, hashing the mask little. MaskPairs are
    never modified after construction; solvers cache what they derive from
    one (keyed by the object) in their own modules.
    """
    if isinstance(mask, MaskPairs):
        return mask
    mask = _as_csr(mask)
    digest = hashlib.sha1(mask.indptr.tobytes())
    digest.update(mask.indices.tobytes())
    key = (mask.shape, digest.hexdigest())
    with _PAIRS_LOCK:
        pairs = _PAIRS_CACHE.get(key)
    if pairs is None:
        pairs = MaskPairs(mask)  # outside the lock: other threads need not wait
    with _PAIRS_LOCK:
        pairs = _PAIRS_CACHE.pop(key, pairs)  # the first one built wins
        _PAIRS_CACHE[key] = pairs  # most recent last
        while len(_PAIRS_CACHE) > 8:
            _PAIRS_CACHE.pop(next(iter(_PAIRS_CACHE)))
    return pairs


def _as_csr(mask):
    """A boolean mask, dense or sparse, as a canonical ``csr_array``: sorted
    indices and no stored ``False``, so that equal patterns have equal arrays."""
    mask = sp.csr_array(mask if sp.issparse(mask) else np.asarray(mask), dtype=bool)
    if not mask.has_canonical_format or not mask.data.all():
        mask = mask.copy()  # never the caller's arrays, which may be read-only
        mask.eliminate_zeros()
        mask.sum_duplicates()
    mask.indices = mask.indices.astype(np.int64, copy=False)
    mask.indptr = mask.indptr.astype(np.int64, copy=False)
    return mask


def matrix_entries(A, rows, cols):
    """``A[rows[k], cols[k]]`` of a sparse matrix for every ``k``, and whether
    ``A`` stores that entry (a missing one reads as zero): one search in the
    sorted flat positions of its entries."""
    A = sp.csr_array(A)
    if not A.has_canonical_format:
        A = A.copy()
        A.sum_duplicates()  # sorts the indices too
    D = A.shape[1]
    stored = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr)) * D + A.indices
    key = np.asarray(rows, dtype=np.int64) * D + np.asarray(cols, dtype=np.int64)
    if stored.size == 0:
        return np.zeros(key.shape), np.zeros(key.shape, dtype=bool)
    at = np.minimum(np.searchsorted(stored, key), stored.size - 1)
    found = stored[at] == key
    return np.where(found, A.data[at], 0.0), found


def diagonal_segments(rows, cols, max_gap=48, max_segments=64):
    """Runs of free entries ``(a, a + o)`` along the diagonals of a pattern.

    Returns ``(segments, take)``: ``segments`` lists ``(o, lo, hi)``, rows
    ``lo <= a < hi`` of diagonal ``o``; laid end to end, their ``hi - lo``
    positions hold entry ``p`` at ``take[p]``. None when the pattern has too
    many runs, or runs too sparse, for contiguous slices to beat gathers.
    Gaps of up to ``max_gap`` rows are bridged (a few wasted dots cost less
    than another call). An 8-connected grid has 5 runs.
    """
    if rows.size == 0:
        return None
    offsets = cols - rows
    order = np.lexsort((rows, offsets))
    o, r = offsets[order], rows[order]
    breaks = np.flatnonzero((np.diff(o) != 0) | (np.diff(r) > max_gap)) + 1
    starts, stops = np.r_[0, breaks], np.r_[breaks, order.size]
    lo, hi = r[starts], r[stops - 1] + 1
    if starts.size > max_segments or np.sum(hi - lo) > 2 * rows.size:
        return None
    base = np.cumsum(hi - lo) - (hi - lo)  # where each run starts, end to end
    take = np.empty(rows.size, dtype=np.intp)
    take[order] = r - np.repeat(lo - base, stops - starts)
    return [(int(o[a]), int(a_lo), int(a_hi)) for a, a_lo, a_hi in zip(starts, lo, hi)], take


class MaskPairs:
    """Index the free entries of a symmetric matrix supported on ``mask``."""

    def __init__(self, mask):
        mask = _as_csr(mask)
        self.n_features = mask.shape[0]
        upper = sp.triu(mask, format="csr")
        upper.sort_indices()
        # row-major order, as np.nonzero(np.triu(dense)) gives
        self.rows = np.repeat(np.arange(self.n_features), np.diff(upper.indptr))
        self.cols = upper.indices.astype(np.int64)
        self.n_pairs = self.rows.size
        self.is_diag = self.rows == self.cols
        self.weights = np.where(self.is_diag, 1.0, 2.0)
        off = ~self.is_diag
        # Both triangles, for building sparse matrices in one call.
        self._sym_rows = np.concatenate([self.rows, self.cols[off]])
        self._sym_cols = np.concatenate([self.cols, self.rows[off]])
        self._sym_take = np.concatenate([np.arange(self.n_pairs), np.flatnonzero(off)])
        # Grid masks put the free entries on few diagonals, in long runs:
        # entry-wise products of two dense matrices on the mask are then
        # contiguous row-wise dots along each run instead of gathers.
        runs = diagonal_segments(self.rows, self.cols)
        self._segments, self._segment_take = (None, None) if runs is None else runs
        self._segment_length = 0 if runs is None else sum(hi - lo for _, lo, hi in runs[0])
        # CSR layout of the symmetric pattern, built once: to_sparse then only
        # gathers theta, and pair_ids looks entries up by their flat position.
        D = self.n_features
        key = self._sym_rows * D + self._sym_cols
        order = np.argsort(key, kind="stable")
        self._sym_keys = key[order]
        self._csr_take = self._sym_take[order]
        self._csr_indices = self._sym_cols[order]
        self._csr_indptr = np.searchsorted(self._sym_rows[order], np.arange(D + 1))
        self.indptr, self.indices = mask.indptr, mask.indices

    def pair_ids(self, i, j):
        """The free entry at ``(i[k], j[k])`` (either order) for every ``k``,
        -1 where the mask has none: a search in the sorted pattern, without
        a dense ``(D, D)`` index."""
        key = np.asarray(i, dtype=np.int64) * self.n_features + np.asarray(j, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sym_keys, key), self._sym_keys.size - 1)
        return np.where(self._sym_keys[at] == key, self._csr_take[at], -1)

    def mask(self):
        """The pattern as a boolean ``csr_array`` (both triangles)."""
        D = self.n_features
        return sp.csr_array(
            (np.ones(self._csr_indices.size, dtype=bool), self._csr_indices, self._csr_indptr),
            shape=(D, D),
        )

    def submask(self, idx, labels=None):
        """The mask's principal submatrix on the sorted features ``idx``, as a
        ``csr_array``; with ``labels``, only the edges within a label."""
        position = np.full(self.n_features, -1)
        position[idx] = np.arange(idx.size)
        r, c = position[self.rows], position[self.cols]
        keep = (r >= 0) & (c >= 0)
        if labels is not None:
            keep &= labels[self.rows] == labels[self.cols]
        r, c = r[keep], c[keep]
        return sp.csr_array(
            (np.ones(2 * r.size, dtype=bool), (np.r_[r, c], np.r_[c, r])), shape=(idx.size,) * 2
        )

    def to_sparse(self, theta):
        """The symmetric matrix with free entries ``theta``, as CSR."""
        D = self.n_features
        return sp.csr_array(
            (theta[self._csr_take], self._csr_indices, self._csr_indptr), shape=(D, D)
        )

    def to_dense(self, theta):
        """The symmetric matrix with free entries ``theta``, dense."""
        out = np.zeros((self.n_features, self.n_features))
        out[self._sym_rows, self._sym_cols] = theta[self._sym_take]
        return out

    def from_dense(self, A):
        """The free entries of a symmetric matrix, dense or sparse (entries a
        sparse matrix does not store are zero)."""
        if sp.issparse(A):
            return matrix_entries(A, self.rows, self.cols)[0]
        return A[self.rows, self.cols]

    def cholesky(self, theta, shift=0.0):
        """The :class:`CholeskyFactor` of ``Lambda(theta) - shift I``, or None
        if that is not positive definite."""
        vals = theta - shift * self.is_diag if shift else theta
        return CholeskyFactor.of_pattern(self.rows, self.cols, vals, self.n_features)

    def is_above(self, theta, c):
        """Whether ``Lambda(theta) - c I`` is positive definite: one Cholesky
        factorisation, by Sylvester's law of inertia."""
        return self.cholesky(theta, shift=c) is not None

    def gram_entries(self, V):
        """The masked entries of ``V @ V.T`` without forming it."""
        return self.row_dots(V, V)

    def row_dots(self, A, B):
        """``(A @ B.T)[a, b]`` for every free entry ``(a, b)``, without forming it."""
        if self._segments is None:
            return np.einsum("ij,ij->i", A[self.rows], B[self.cols])
        A = np.ascontiguousarray(A)
        B = np.ascontiguousarray(B)
        dots, at = np.empty(self._segment_length), 0
        for o, lo, hi in self._segments:
            np.einsum("ij,ij->i", A[lo:hi], B[lo + o : hi + o], out=dots[at : at + hi - lo])
            at += hi - lo
        return dots[self._segment_take]

    def col_dots(self, A, B):
        """``(A.T @ B)[a, b]`` for every free entry ``(a, b)``, without forming
        it or transposing either operand (column dots of C-ordered arrays)."""
        if self._segments is None:
            return np.einsum("ki,ki->i", A[:, self.rows], B[:, self.cols])
        dots, at = np.empty(self._segment_length), 0
        for o, lo, hi in self._segments:
            np.einsum("ki,ki->i", A[:, lo:hi], B[:, lo + o : hi + o], out=dots[at : at + hi - lo])
            at += hi - lo
        return dots[self._segment_take]

    def quadratic_forms(self, U, theta):
        """``u' Lambda(theta) u`` for every row ``u`` of ``U``, without
        forming the matrix or the features: along each pixel offset, one
        product of shifted columns and a matrix-vector product."""
        tw = self.weights * theta
        if self._segments is None:
            return (U[:, self.rows] * U[:, self.cols]) @ tw
        v = np.zeros(self._segment_length)  # theta along the runs, end to end
        v[self._segment_take] = tw
        out, at = np.zeros(U.shape[0]), 0
        for o, lo, hi in self._segments:
            out += (U[:, lo:hi] * U[:, lo + o : hi + o]) @ v[at : at + hi - lo]
            at += hi - lo
        return out

    def _expand_neighbours(self, nodes):
        """``(i, k)``: for each ``nodes[i]``, every neighbour ``k`` of it."""
        deg = np.diff(self.indptr)[nodes]
        i = np.repeat(np.arange(nodes.size), deg)
        offset = np.arange(i.size) - np.repeat(np.cumsum(deg) - deg, deg)
        return i, self.indices[np.repeat(self.indptr[nodes], deg) + offset]

    def neighbour_products(self, second):
        """Triples ``(p, k, q)`` pairing each free entry ``p`` with every
        neighbour ``k`` of its end ``second[p]`` and the pair ``q = (k, second[p])``.

        ``second`` is one of the two index arrays of the pairs (``rows`` or
        ``cols``). Used to assemble sparse operators such as the score
        matching Hessian without Python loops.
        """
        p, k = self._expand_neighbours(second)
        q = self.pair_ids(k, second[p])
        return p, k, q
