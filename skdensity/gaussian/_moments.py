"""Sufficient statistics of a Gaussian: count, mean and covariance, computed
in one pass and merged exactly for streaming fits, dense or on a sparse
pattern (the window a masked fit reads)."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..linalg._eigen import lanczos_top
from ..utils._compat import _assert_all_finite

__all__ = ["Moments", "SparseMoments", "data_top_eigenvalue"]

# Rows per chunk of the passes over the data: temporaries stay near 64 MB.
_CHUNK_BYTES = 2**26


@dataclass(frozen=True)
class Moments:
    """Count, mean and (biased) covariance of a sample set."""

    n_samples: int
    mean: np.ndarray
    covariance: np.ndarray

    @property
    def n_features(self):
        return self.mean.shape[0]

    @classmethod
    def of(cls, X, assume_centered=False):
        """The moments of ``X`` (not modified): one product of the centred data."""
        n = X.shape[0]
        if assume_centered:
            return cls(n, np.zeros(X.shape[1]), X.T @ X / n)
        mean = X.mean(axis=0)
        Xc = X - mean
        return cls(n, mean, Xc.T @ Xc / n)

    @classmethod
    def of_finite(cls, X, assume_centered=False):
        """:meth:`of` for data not yet checked for NaN and infinity.

        NaN or infinity anywhere makes a column mean or a variance
        non-finite, so the moments replace scikit-learn's separate scan of
        the data; only then is the data scanned, for scikit-learn's own error.
        """
        with np.errstate(all="ignore"):  # non-finite input is reported below
            moments = cls.of(X, assume_centered)
        if not (
            np.all(np.isfinite(moments.mean)) and np.all(np.isfinite(np.diag(moments.covariance)))
        ):
            _assert_all_finite(X, input_name="X")
        return moments

    def merge(self, other):
        """Exact pooled moments of two sample sets (Chan, Golub & LeVeque 1979).

        Merging centred scatter matrices plus a rank-one mean correction avoids
        the cancellation of the naive ``E[xx'] - mean mean'`` formula.
        """
        n1, n2 = self.n_samples, other.n_samples
        n = n1 + n2
        delta = other.mean - self.mean
        mean = self.mean + delta * (n2 / n)
        covariance = (
            (n1 / n) * self.covariance
            + (n2 / n) * other.covariance
            + np.outer(delta, delta) * (n1 * n2 / n**2)
        )
        return Moments(n, mean, covariance)


@dataclass(frozen=True)
class SparseMoments:
    """Count, mean and (biased) covariance on a sparse pattern, with the
    largest eigenvalue of the full covariance that score matching's bound
    is relative to (None where no estimator needs it).

    ``covariance`` is a canonical ``csr_array`` holding every entry of the
    pattern (zeros included), so two sample sets' statistics on one pattern
    merge by adding their ``data`` arrays.
    """

    n_samples: int
    mean: np.ndarray
    covariance: sp.csr_array
    top_eigenvalue: float | None = None

    @property
    def n_features(self):
        return self.mean.shape[0]

    @classmethod
    def of_pattern(cls, X, pattern, assume_centered=False):
        """The moments of ``X`` on the entries of the symmetric ``pattern``
        (any sparse matrix), by column products in chunks of rows: memory
        ``O(chunk * nnz)``, never ``(D, D)``."""
        pattern = sp.csr_array(pattern, dtype=bool)
        pattern.sum_duplicates()
        upper = sp.coo_array(sp.triu(pattern))
        rows, cols = upper.row.astype(np.int64), upper.col.astype(np.int64)
        n = X.shape[0]
        mean = np.zeros(X.shape[1]) if assume_centered else X.mean(axis=0)
        sums = np.zeros(rows.size)
        step = max(1, _CHUNK_BYTES // (8 * max(rows.size, 1)))
        for start in range(0, n, step):
            chunk = X[start : start + step] - mean
            sums += np.einsum("ki,ki->i", chunk[:, rows], chunk[:, cols])
        return cls(n, mean, symmetric_csr(rows, cols, sums / n, X.shape[1]))

    def merge(self, other):
        """Exact pooled moments of two sample sets on one pattern (Chan,
        Golub & LeVeque 1979). The largest eigenvalue of the pooled covariance
        is not a function of the two: the merge keeps Weyl's upper bound,
        the weighted sum of the two plus the mean shift's."""
        a, b = self.covariance, other.covariance
        if not (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)):
            raise ValueError("Moments on different patterns cannot be merged.")
        n1, n2 = self.n_samples, other.n_samples
        n = n1 + n2
        delta = other.mean - self.mean
        row = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
        data = (n1 / n) * a.data + (n2 / n) * b.data
        data += delta[row] * delta[a.indices] * (n1 * n2 / n**2)
        covariance = sp.csr_array((data, a.indices, a.indptr), shape=a.shape)
        top = None
        if self.top_eigenvalue is not None and other.top_eigenvalue is not None:
            top = (
                (n1 / n) * self.top_eigenvalue
                + (n2 / n) * other.top_eigenvalue
                + (n1 * n2 / n**2) * float(delta @ delta)
            )
        return SparseMoments(n, self.mean + delta * (n2 / n), covariance, top)


def symmetric_csr(rows, cols, values, n_features):
    """The canonical symmetric ``csr_array`` with upper-triangle ``values``
    at ``(rows, cols)``, explicit zeros kept (a fixed pattern)."""
    off = rows != cols
    out = sp.coo_array(
        (
            np.concatenate([values, values[off]]),
            (np.concatenate([rows, cols[off]]), np.concatenate([cols, rows[off]])),
        ),
        shape=(n_features, n_features),
    ).tocsr()
    out.sum_duplicates()
    return out


def data_top_eigenvalue(X, mean, *, rtol=1e-6, max_steps=500):
    """The largest eigenvalue of the covariance of the rows of ``X`` about
    ``mean``, by Lanczos on products with the data in chunks of rows: the
    covariance itself is never formed.

    Full reorthogonalisation and a fixed start make the result reproducible.
    The Ritz value stops when its residual bound is below ``rtol`` times
    itself; the value is then accurate to about the square of that.
    """
    n, D = X.shape
    if D <= 64:  # LAPACK on the small covariance itself
        Xc = X - mean
        return float(np.linalg.eigvalsh(Xc.T @ Xc / n)[-1])
    # chunks of about 8 MB stay in cache between their two products
    step = max(1, 2**23 // (8 * D))

    def covariance_times(v):
        # X_c' X_c v / n with X_c = X - 1 mean', without forming X_c
        out = np.zeros(D)
        total, mv = 0.0, mean @ v
        for start in range(0, n, step):
            chunk = X[start : start + step]
            r = chunk @ v - mv
            out += chunk.T @ r
            total += r.sum()
        return (out - mean * total) / n

    return operator_top_eigenvalue(covariance_times, D, rtol=rtol, max_steps=max_steps)


def operator_top_eigenvalue(covariance_times, n_features, *, rtol=1e-6, max_steps=500):
    """The largest eigenvalue of a covariance known through its products,
    by Lanczos from a fixed start (so in memory and on a cluster agree)."""
    start = np.random.default_rng(0).uniform(0.5, 1.5, n_features)
    return lanczos_top(covariance_times, start, rtol=rtol, max_steps=max_steps)[0]
