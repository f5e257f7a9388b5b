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
from ._block_tridiagonal import block_layout


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


def _shift_invert_lanczos(solve, shift, D, max_steps=40, rtol=1e-13):
    """The smallest eigenpair of ``A`` from ``solve = (A - shift I)^{-1}``
    (``shift`` below the spectrum) by Lanczos with full reorthogonalisation,
    or None if it has not converged after ``max_steps`` (ARPACK then runs).

    ARPACK's shift-invert mode from the same start (ones), without its
    reverse-communication loop in Python (each step is one banded solve):
    on MNIST's score matching and maximum likelihood precisions, and the
    unconstrained score matching optima of natural patches, 8-16 steps
    against ARPACK's 21 solves, and 0.3-1 ms less per call. A Ritz pair is
    converged when its residual bound ``beta_m |s_m|`` is below ``rtol``
    times its Ritz value. Tight bottom clusters (:func:`bottom_eig`) are
    left to ARPACK after ``max_steps``.
    """
    steps = min(max_steps, D)
    Q = np.empty((steps + 1, D))
    Q[0] = 1.0 / np.sqrt(D)
    alpha, beta = np.empty(steps), np.empty(steps)
    for j in range(steps):
        w = solve(Q[j])
        alpha[j] = Q[j] @ w
        for _ in range(2):  # full reorthogonalisation: "twice is enough"
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        m = j + 1
        exhausted = beta[j] <= 1e-14 * abs(alpha[j])  # an invariant subspace
        if m % 4 == 0 or m == steps or exhausted:
            theta, s = la.eigh_tridiagonal(alpha[:m], beta[: m - 1],
                                           select="i", select_range=(m - 1, m - 1))
            if exhausted or beta[j] * abs(s[-1, 0]) <= rtol * abs(theta[0]):
                return shift + 1.0 / theta, Q[:m].T @ s
        if exhausted:
            break
        Q[j + 1] = w / beta[j]
    return None


def diagonal_segments(rows, cols, max_gap=48, max_segments=64):
    """Runs of free entries ``(a, a + o)`` along the diagonals of a pattern.

    Returns ``(segments, take)``: ``segments`` lists ``(o, lo, hi)``, rows
    ``lo <= a < hi`` of diagonal ``o``; laid end to end, their ``hi - lo``
    positions hold entry ``p`` at ``take[p]``. None when the pattern has too
    many runs, or runs too sparse, for contiguous slices to beat gathers.
    Gaps of up to ``max_gap`` rows are bridged (a few wasted dots cost less
    than another call). A 28x28 grid has 5 runs (8-connected); with
    MNIST's 111 constant pixels removed, 25 runs cover 3,302 rows for 3,216
    entries.
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


def decoupled_spans(pairs, S_E):
    """Where a problem that matches ``S`` on the mask splits exactly.

    Features are linked by the mask's edges on which ``S`` (``S_E``, its
    free entries) is nonzero. Returns ``(labels, spans)``: the connected
    component of each feature, and the index ranges ``(lo, hi)`` that hold
    the components of more than one feature (overlapping ranges merged).
    A feature outside every span is alone in its component. Estimators that
    match ``S`` on the mask (maximum likelihood) are block diagonal over the
    components: edges between components can be dropped, spans solved
    apart, and lone features solved in closed form. Ranges, not the
    components themselves, keep the grid's few diagonals intact (see
    :func:`diagonal_segments`). On MNIST-10k: 111 constant pixels (zero
    covariance with every neighbour); the span is pixels 35 to 778, 71 of
    them alone inside it.
    """
    from scipy.sparse.csgraph import connected_components

    D = pairs.n_features
    coupled = ~pairs.is_diag & (S_E != 0)
    graph = sp.coo_array(
        (np.ones(np.count_nonzero(coupled)), (pairs.rows[coupled], pairs.cols[coupled])),
        shape=(D, D),
    )
    n_components, labels = connected_components(graph, directed=False)
    if n_components == 1:
        return labels, [(0, D)]
    size = np.bincount(labels)
    first = np.full(n_components, D)
    last = np.zeros(n_components, dtype=int)
    np.minimum.at(first, labels, np.arange(D))
    np.maximum.at(last, labels, np.arange(D))
    spans = []
    for lo, hi in sorted(zip(first[size > 1], last[size > 1] + 1)):
        if spans and lo < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(int(hi), spans[-1][1]))
        else:
            spans.append((int(lo), int(hi)))
    return labels, spans


def lone_variances(S, alone):
    """``S[a, a]`` for the features ``alone`` in their block (see
    :func:`decoupled_spans`), whose precision is closed-form; a clear error
    if one is not positive."""
    variances = S[alone, alone]
    if not np.all(variances > 0):
        raise ValueError(
            "S is not positive definite: feature(s) "
            f"{alone[~(variances > 0)][:5].tolist()} have zero variance. Use reg > 0."
        )
    return variances


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
        # Grid masks put the free entries on few diagonals (5 for 8-connected),
        # in long runs: then entry-wise products of two dense matrices on the
        # mask are contiguous row-wise dots along each run instead of gathers.
        runs = diagonal_segments(self.rows, self.cols)
        self._segments, self._segment_take = (None, None) if runs is None else runs
        self._segment_length = 0 if runs is None else sum(hi - lo for _, lo, hi in runs[0])
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

    def submask(self, idx, labels=None):
        """The mask's principal submatrix on the sorted features ``idx``, dense;
        with ``labels``, only the edges within a label."""
        position = np.full(self.n_features, -1)
        position[idx] = np.arange(idx.size)
        r, c = position[self.rows], position[self.cols]
        keep = (r >= 0) & (c >= 0)
        if labels is not None:
            keep &= labels[self.rows] == labels[self.cols]
        out = np.zeros((idx.size, idx.size), dtype=bool)
        out[r[keep], c[keep]] = out[c[keep], r[keep]] = True
        return out

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
        if self._segments is None:
            return np.einsum("ij,ij->i", A[self.rows], B[self.cols])
        A = np.ascontiguousarray(A)
        B = np.ascontiguousarray(B)
        dots, at = np.empty(self._segment_length), 0
        for o, lo, hi in self._segments:
            np.einsum("ij,ij->i", A[lo:hi], B[lo + o:hi + o], out=dots[at:at + hi - lo])
            at += hi - lo
        return dots[self._segment_take]

    def col_dots(self, A, B):
        """``(A.T @ B)[a, b]`` for every free entry ``(a, b)``, without forming
        it or transposing either operand (column dots of C-ordered arrays)."""
        if self._segments is None:
            return np.einsum("ki,ki->i", A[:, self.rows], B[:, self.cols])
        dots, at = np.empty(self._segment_length), 0
        for o, lo, hi in self._segments:
            np.einsum("ki,ki->i", A[:, lo:hi], B[:, lo + o:hi + o], out=dots[at:at + hi - lo])
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
            out += (U[:, lo:hi] * U[:, lo + o:hi + o]) @ v[at:at + hi - lo]
            at += hi - lo
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

    def local_inverse_hessian(self, Sigma):
        r"""Additive Schwarz preconditioner for covariance selection's Newton system.

        The Hessian at a precision with inverse ``Sigma`` is ``H_pq = w_p w_q
        (Sigma_ac Sigma_bd + Sigma_ad Sigma_bc) / 2`` for ``p = (a, b)``, ``q
        = (c, d)``. Each feature ``a`` with its neighbours of larger index
        spans a block of free entries (13 on an 8-connected grid: a 2x3
        corner of the pixel's neighbourhood); the blocks overlap and cover
        every entry. Returned as a sparse matrix: the sum over blocks of the
        inverse of ``H`` restricted to the block. On MNIST-10k at the
        optimum it leaves the preconditioned Hessian a condition number of
        39, against 540 for the inverse of the unprojected Hessian,
        ``R -> P_E(Lambda R Lambda)`` (the previous preconditioner; its worst
        directions raise both diagonal couplings of 2x2 squares together over
        a smooth region).
        """
        if not hasattr(self, "_schwarz"):
            self._schwarz = self._schwarz_structure()
        gather, weight, valid, padding, position, indices, indptr = self._schwarz
        flat = np.asarray(Sigma).ravel()
        blocks = flat[gather[0]] * flat[gather[1]]
        blocks += flat[gather[2]] * flat[gather[3]]
        blocks *= weight
        blocks[padding] = 1.0  # padded blocks: identity where the block is short
        data = np.bincount(position, weights=np.linalg.inv(blocks)[valid],
                           minlength=indices.size)
        return sp.csr_array((data, indices, indptr), shape=(self.n_pairs, self.n_pairs))

    def _schwarz_structure(self):
        # Block of feature a: a and its neighbours of larger index (graph rows
        # include a), padded to a common width; then every free pair among them.
        D = self.n_features
        counts = np.diff(self.indptr)
        owner = np.repeat(np.arange(D), counts)
        forward = self.indices >= owner
        owner, node = owner[forward], self.indices[forward]
        width = np.bincount(owner, minlength=D)
        slot = np.arange(owner.size) - np.repeat(np.cumsum(width) - width, width)
        nodes = np.full((D, width.max()), -1)
        nodes[owner, slot] = node
        i, j = np.triu_indices(nodes.shape[1])
        u, v = nodes[:, i], nodes[:, j]
        cand = np.where((u >= 0) & (v >= 0), self.pair_id[np.maximum(u, 0), np.maximum(v, 0)], -1)
        k = int((cand >= 0).sum(axis=1).max())
        order = np.argsort(cand < 0, axis=1, kind="stable")[:, :k]  # valid entries first
        ids = np.take_along_axis(cand, order, axis=1)
        short = ids < 0
        ids[short] = 0
        a, b = self.rows[ids], self.cols[ids]
        gather = [(u[:, :, None] * D + v[:, None, :]) for u, v in ((a, a), (b, b), (a, b), (b, a))]
        weight = 0.5 * self.weights[ids][:, :, None] * self.weights[ids][:, None, :]
        valid = ~short[:, :, None] & ~short[:, None, :]
        weight[~valid] = 0.0
        padding = short[:, :, None] & np.eye(k, dtype=bool)[None]
        rows = np.broadcast_to(ids[:, :, None], valid.shape)[valid]
        cols = np.broadcast_to(ids[:, None, :], valid.shape)[valid]
        key = rows.astype(np.int64) * self.n_pairs + cols
        uniq, position = np.unique(key, return_inverse=True)
        indptr = np.searchsorted(uniq // self.n_pairs, np.arange(self.n_pairs + 1))
        return gather, weight, valid, padding, position, uniq % self.n_pairs, indptr

    def anticommutator_pattern(self):
        """Where ``Delta -> w * P_E(S Delta + Delta S) / 2`` reads ``S``, in
        the free entries: ``(p, q, gather, coef)``, the operator being the
        sum of ``coef * S.flat[gather]`` at ``(p, q)`` (duplicates add up).

        It does not depend on ``S``: built once per mask and cached (the
        score matching Hessian is this operator; assembling it from the
        cache is a gather and a ``bincount``, about 1 against 4 ms at 28x28).
        """
        if not hasattr(self, "_anticommutator"):
            # (S Delta + Delta S)/2 at pair (a, b), for Delta = E_q, collects
            # S[a, k] Delta[k, b] over neighbours k of b, and the mirror term.
            p1, k1, q1 = self.neighbour_products(self.cols)
            p2, k2, q2 = self.neighbour_products(self.rows)
            D = self.n_features
            gather = np.concatenate([self.rows[p1] * D + k1, self.cols[p2] * D + k2])
            p = np.concatenate([p1, p2])
            self._anticommutator = (p, np.concatenate([q1, q2]), gather, 0.5 * self.weights[p])
        return self._anticommutator

    def block_layout(self):
        """The mask as block tridiagonal (:func:`skdensity._block_tridiagonal.block_layout`),
        or None where that does not pay; built once and cached."""
        if not hasattr(self, "_block_layout"):
            self._block_layout = block_layout(self)
        return self._block_layout

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
