"""Coordinates for symmetric matrices supported on a mask.

Every solver works in the vector ``theta`` of free entries ``Lambda[a, b]``
with ``a <= b`` and ``mask[a, b]``. With ``E_p`` the symmetric unit matrix of
pair ``p`` (one entry on the diagonal, two off it), the Frobenius inner
product of two masked matrices is ``sum(weights * x * y)`` with weight 1 on
the diagonal and 2 off it.
"""

import hashlib

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from ._banded import (
    banded_solver,
    on_two_threads,
    shift_below_spectrum,
    single_threaded,
    upper_band,
)


_PAIRS_CACHE = {}


def as_pairs(mask):
    """``mask`` as MaskPairs, reusing it when a solver passes one along.

    Index structures of recent masks are cached by content (building one
    for a 28x28 grid costs about 5 ms, a visible share of a score matching
    fit; hashing the mask costs 0.1 ms). MaskPairs are never modified,
    except to build further index structures lazily, once.
    """
    if isinstance(mask, MaskPairs):
        return mask
    mask = np.asarray(mask, dtype=bool)
    key = (mask.shape, hashlib.sha1(np.packbits(mask).tobytes()).hexdigest())
    pairs = _PAIRS_CACHE.pop(key, None) or MaskPairs(mask)
    _PAIRS_CACHE[key] = pairs  # most recent last
    while len(_PAIRS_CACHE) > 8:
        _PAIRS_CACHE.pop(next(iter(_PAIRS_CACHE)))
    return pairs


def bottom_eig(A, k=1):
    """The ``k`` smallest eigenpairs of a symmetric matrix (dense or sparse).

    Large sparse matrices that are narrowly banded (grid masks are:
    bandwidth 29 at 28x28) use shift-invert Lanczos below the spectrum: a
    banded Cholesky factorisation that succeeds proves a shift lies below
    the smallest eigenvalue (Sylvester's inertia), bisection between
    Gershgorin's bound and zero brings it close, and a few cheap triangular
    solves then converge (measured 8 ms against 35 ms for plain Lanczos at
    784 pixels). Other large sparse matrices use plain Lanczos; small ones
    LAPACK. ARPACK starts from a fixed vector, so results are reproducible.
    """
    D = A.shape[0]
    k = min(k, D)
    if sp.issparse(A) and D > 200:
        from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

        ab = upper_band(A)
        shift, factor = shift_below_spectrum(ab) if ab is not None else (None, None)
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
                    # A tight cluster at the bottom (a rank-6 multiplier pins six
                    # eigenvalues within 4e-7 of eps in 4-connected cNCE on MNIST)
                    # stalls Lanczos with ARPACK's default 2k + 1 (at least 20)
                    # basis vectors: 1-9 s or no convergence. A 64-vector basis
                    # resolves it in 25-45 ms.
                    w, U = eigsh(A, k=k, tol=0, v0=np.ones(D), ncv=min(D, max(64, 4 * k)),
                                 **kwargs)
        except ArpackNoConvergence:
            # Clustered bottom eigenvalues can stall Lanczos (seen for plain
            # Lanczos on a 4-connected MNIST precision): LAPACK always works.
            return la.eigh(A.toarray(), subset_by_index=[0, k - 1])
        order = np.argsort(w)
        return w[order], U[:, order]
    A = A.toarray() if sp.issparse(A) else A
    return la.eigh(A, subset_by_index=[0, k - 1])


class MaskPairs:
    """Index the free entries of a symmetric matrix supported on ``mask``."""

    def __init__(self, mask):
        mask = np.asarray(mask, dtype=bool)
        self.n_features = mask.shape[0]
        self.rows, self.cols = np.nonzero(np.triu(mask))
        self.n_pairs = self.rows.size
        self.is_diag = self.rows == self.cols
        self.weights = np.where(self.is_diag, 1.0, 2.0)
        off = ~self.is_diag
        # Both triangles, for building sparse matrices in one call.
        self._sym_rows = np.concatenate([self.rows, self.cols[off]])
        self._sym_cols = np.concatenate([self.cols, self.rows[off]])
        self._sym_take = np.concatenate([np.arange(self.n_pairs), np.flatnonzero(off)])
        # Grid masks have few distinct offsets b - a (5 for 8-connected):
        # then entry-wise products of two dense matrices on the mask are
        # contiguous row-wise dots along each offset instead of gathers.
        offsets = self.cols - self.rows
        uniq = np.unique(offsets)
        self._offset_groups = (
            [(int(o), np.flatnonzero(offsets == o)) for o in uniq] if uniq.size <= 32 else None
        )
        # CSR layout of the symmetric pattern, built once: to_sparse then only
        # gathers theta (a COO-to-CSR conversion per call cost more than the
        # sparse products it fed).
        order = sp.csr_array(
            (np.arange(1, self._sym_rows.size + 1), (self._sym_rows, self._sym_cols)),
            shape=mask.shape,
        )
        order.sort_indices()
        self._csr_take = self._sym_take[order.data - 1]
        self._csr_indices, self._csr_indptr = order.indices, order.indptr
        graph = sp.csr_array(mask)
        self.indptr, self.indices = graph.indptr, graph.indices
        # Pair id of every (i, j) in the mask, either order; -1 outside.
        self.pair_id = np.full(mask.shape, -1, dtype=np.int32 if self.n_pairs < 2**31 else np.int64)
        self.pair_id[self.rows, self.cols] = np.arange(self.n_pairs)
        self.pair_id[self.cols, self.rows] = np.arange(self.n_pairs)

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
        """The free entries of a (symmetric) dense matrix."""
        return A[self.rows, self.cols]

    def gram_entries(self, V):
        """The masked entries of ``V @ V.T`` without forming it."""
        return self.row_dots(V, V)

    def row_dots(self, A, B):
        """``(A @ B.T)[a, b]`` for every free entry ``(a, b)``, without forming it."""
        if self._offset_groups is None:
            return np.einsum("ij,ij->i", A[self.rows], B[self.cols])
        A = np.ascontiguousarray(A)
        B = np.ascontiguousarray(B)
        D = self.n_features
        out = np.empty(self.n_pairs)
        for o, idx in self._offset_groups:
            dots = np.einsum("ij,ij->i", A[: D - o], B[o:])
            out[idx] = dots[self.rows[idx]]
        return out

    def col_dots(self, A, B):
        """``(A.T @ B)[a, b]`` for every free entry ``(a, b)``, without forming
        it or transposing either operand (column dots of C-ordered arrays)."""
        if self._offset_groups is None:
            return np.einsum("ki,ki->i", A[:, self.rows], B[:, self.cols])
        D = self.n_features
        out = np.empty(self.n_pairs)
        for o, idx in self._offset_groups:
            dots = np.einsum("ki,ki->i", A[:, : D - o], B[:, o:])
            out[idx] = dots[self.rows[idx]]
        return out

    def quadratic_forms(self, U, theta):
        """``u' Lambda(theta) u`` for every row ``u`` of ``U``, without
        forming the matrix or the features: along each pixel offset, one
        product of shifted columns and a matrix-vector product."""
        tw = self.weights * theta
        if self._offset_groups is None:
            return (U[:, self.rows] * U[:, self.cols]) @ tw
        D = self.n_features
        out = np.zeros(U.shape[0])
        for o, idx in self._offset_groups:
            v = np.zeros(D - o)  # theta along this offset, indexed by pixel
            v[self.rows[idx]] = tw[idx]
            out += (U[:, : D - o] * U[:, o:]) @ v
        return out

    def quadratic_features(self, U, direction=None, scale=0.0, centre=None, block=8192):
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
        temporary of the samples' or the result's size (measured for
        88,000 x 784 samples, 8-connected, on memory touched before: 1.5 s
        for gathers of blocks of pairs, 0.8 s for this; a fresh process
        also pays about 4 s of page faults for the 2.6 GB result on the
        2-core development VM).
        """
        U = np.asarray(U, dtype=float)
        n, D = U.shape
        out = np.empty((self.n_pairs, n))
        weight = -0.5 * self.weights
        rows, cols = self.rows, self.cols
        block = max(1, min(block, n))
        shift = 0.0 if centre is None else np.reshape(centre, (-1, 1))
        # Per-thread buffers (np.empty touches no memory until used).
        buffers = [(np.empty((D, block)), None if direction is None else np.empty((D, block)),
                    np.empty(block)) for _ in range(2)]

        def fill(worker, sl):
            UT, VT, tmp = buffers[worker]
            k = sl.stop - sl.start
            u, t = UT[:, :k], tmp[:k]
            np.subtract(U[sl].T, shift, out=u)
            if VT is not None:
                v = VT[:, :k]
                np.multiply(direction[sl].T, scale, out=v)
                v += u
            for p in range(self.n_pairs):
                row = out[p, sl]
                np.multiply(u[rows[p]], u[cols[p]], out=row)
                if VT is not None:
                    np.multiply(v[rows[p]], v[cols[p]], out=t)
                    row -= t
                row *= weight[p]

        on_two_threads(n, block, fill)
        return out.T

    def sandwich_matrix(self, theta):
        """Sparse matrix of ``y -> from_dense(L @ to_dense(y) @ L)`` with
        ``L`` the symmetric matrix of free entries ``theta``.

        Entry ``(p, q)`` with ``p = (a, b)`` sums ``L[a, c] * L[d, b]`` over
        the ordered ``(c, d)`` of pair ``q`` with ``c ~ a`` and ``d ~ b``
        (29 entries per row on average on an 8-connected 28x28 grid).
        Applying it is one sparse matrix-vector product (0.1 ms on 784 pixels
        against 1.8 ms for two sparse matrix-matrix products and a sampling);
        building it gathers and sums the products into a fixed pattern (1.3
        ms; the index structure is built once per mask, 30 ms).
        """
        if not hasattr(self, "_sandwich"):
            self._sandwich = self._sandwich_structure()
        left, right, position, indices, indptr = self._sandwich
        data = np.bincount(position, weights=theta[left] * theta[right], minlength=indices.size)
        return sp.csr_array((data, indices, indptr), shape=(self.n_pairs, self.n_pairs))

    def _sandwich_structure(self):
        p, c = self._expand_neighbours(self.rows)  # every p = (a, b), every c ~ a
        i, d = self._expand_neighbours(self.cols[p])  # then every d ~ b
        p, c = p[i], c[i]
        q = self.pair_id[c, d]
        keep = q >= 0
        p, c, d, q = p[keep], c[keep], d[keep], q[keep]
        left = self.pair_id[self.rows[p], c]  # L[a, c]
        right = self.pair_id[d, self.cols[p]]  # L[d, b]
        # Duplicate (p, q) (both orders of an off-diagonal q) share a CSR slot.
        key = p.astype(np.int64) * self.n_pairs + q
        uniq, position = np.unique(key, return_inverse=True)
        indptr = np.searchsorted(uniq // self.n_pairs, np.arange(self.n_pairs + 1))
        return left, right, position, uniq % self.n_pairs, indptr

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
        q = self.pair_id[k, second[p]]
        return p, k, q


class QuadraticFeatures:
    """The NCE design matrix ``Phi`` as an operator: ``Phi @ theta``, ``Phi.T @ d``.

    Row ``i`` holds the quadratic features of ``U[i] - centre`` (see
    :meth:`MaskPairs.quadratic_features`), minus those of
    ``U[i] - centre + scale * direction[i]`` when a direction is given
    (conditional NCE's pairs). The matrix has ``n_samples * n_pairs`` entries: 290 MB for
    8,000 MNIST digits, 18 GB for 500,000 noise samples. It is stored when it
    fits in ``max_bytes`` (then each product is one BLAS pass) and otherwise
    recomputed in row chunks on every product from the samples themselves
    (:meth:`MaskPairs.quadratic_forms`, :meth:`MaskPairs.col_dots`) on two
    threads: memory stays at the size of the data, each product costs about
    4 times a stored one (measured on 50,000 x 784 samples, 8-connected:
    0.42 s against 0.11 s for both products; 0.85 s on one thread).
    """

    def __init__(self, pairs, U, direction=None, scale=0.0, *, centre=None, max_bytes=2**30,
                 chunk=2048):
        self.pairs = pairs
        self.U = np.ascontiguousarray(U, dtype=float)
        self.centre = None if centre is None else np.asarray(centre, dtype=float)
        self.direction = None if direction is None else np.ascontiguousarray(direction, dtype=float)
        self.scale = float(scale)
        self.chunk = chunk
        self.shape = (self.U.shape[0], pairs.n_pairs)
        self.stored = self.shape[0] * self.shape[1] * 8 <= max_bytes
        self._Phi = (
            pairs.quadratic_features(self.U, self.direction, self.scale, self.centre)
            if self.stored else None
        )

    def _rows(self, sl):
        """The (centred) samples of a row block and their shifted copies (or None)."""
        Uc = self.U[sl] if self.centre is None else self.U[sl] - self.centre
        Vc = None if self.direction is None else Uc + self.scale * self.direction[sl]
        return Uc, Vc

    def __matmul__(self, theta):
        if self._Phi is not None:
            return self._Phi @ theta
        out = np.empty(self.shape[0])

        def work(_, sl):
            out[sl] = sum(sign * self.pairs.quadratic_forms(W, theta)
                          for sign, W in zip((1.0, -1.0), self._rows(sl)) if W is not None)

        on_two_threads(self.shape[0], self.chunk, work)
        return -0.5 * out

    def rmatvec(self, d):
        """``Phi.T @ d``: the d-weighted second moments on the mask."""
        if self._Phi is not None:
            return self._Phi.T @ d

        def work(_, sl):
            return sum(sign * self.pairs.col_dots(W, d[sl, None] * W)
                       for sign, W in zip((1.0, -1.0), self._rows(sl)) if W is not None)

        parts = [part for results in on_two_threads(self.shape[0], self.chunk, work)
                 for part in results]
        return -0.5 * self.pairs.weights * np.sum(parts, axis=0)

    @property
    def T(self):
        return _Transposed(self)


class _Transposed:
    def __init__(self, op):
        self.op = op

    def __matmul__(self, d):
        return self.op.rmatvec(d)
