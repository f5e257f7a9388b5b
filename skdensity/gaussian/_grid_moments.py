"""Second moments of images on a window of pixel offsets, by shifted products.

A masked Gaussian on a pixel grid needs the covariance only between pixels
that are neighbours (maximum likelihood) or neighbours of neighbours (score
matching): a window of offsets around each pixel. Those entries are the
sums over images of a centred image times a shifted copy of itself, which
cost ``O(n D k)`` and ``O(D k)`` memory for ``k`` offsets, where the dense
covariance costs ``O(n D^2)`` and ``O(D^2)``.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..masks import _check_image_shape, neighbour_slices
from ._moments import symmetric_csr

__all__ = ["GridMoments", "window_offsets"]


def window_offsets(radius):
    """The offsets ``(dy, dx)`` of a ``(2 radius + 1)``-square window that come
    first in row-major order, ``(0, 0)`` included: the other half are their
    negatives, whose moments are the same numbers transposed."""
    return tuple(
        (dy, dx)
        for dy in range(radius + 1)
        for dx in range(-radius, radius + 1)
        if dy > 0 or dx >= 0
    )


@dataclass(frozen=True)
class GridMoments:
    """Count, mean and windowed covariance of images of shape
    ``(height, width, channels)``.

    ``products[k, i, j, a, b]`` is the (biased) covariance of channel ``a`` at
    pixel ``(i, j)`` with channel ``b`` at pixel ``(i + dy, j + dx)``,
    ``(dy, dx) = offsets[k]``, and zero where that neighbour falls outside
    the image. Features are flattened as ``reshape(n, height, width,
    channels)`` does.
    """

    n_samples: int
    mean: np.ndarray  # (height, width, channels)
    offsets: tuple
    products: np.ndarray  # (n_offsets, height, width, channels, channels)

    @property
    def image_shape(self):
        return self.mean.shape

    @property
    def n_features(self):
        return self.mean.size

    @classmethod
    def of(cls, X, image_shape, radius, assume_centered=False, *, chunk_size=256):
        """The moments of the rows of ``X`` (images flattened), in chunks of
        ``chunk_size`` rows merged exactly, so memory stays ``O(D k)``; with
        ``assume_centered``, about zero."""
        h, w, c = _check_image_shape(image_shape)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != h * w * c:
            raise ValueError(
                f"X must have shape (n_samples, {h * w * c}) for images of shape "
                f"{tuple(image_shape)}, got {X.shape}."
            )
        if X.shape[0] == 0:
            raise ValueError("X has no samples.")
        offsets = window_offsets(radius)
        total = None
        for start in range(0, X.shape[0], chunk_size):
            images = X[start : start + chunk_size].reshape(-1, h, w, c)
            mean = np.zeros((h, w, c)) if assume_centered else images.mean(axis=0)
            centred = images - mean
            products = np.zeros((len(offsets), h, w, c, c))
            for k, (dy, dx) in enumerate(offsets):
                here, there = neighbour_slices(h, w, dy, dx)
                products[(k, *here)] = np.einsum(
                    "nija,nijb->ijab", centred[(slice(None), *here)], centred[(slice(None), *there)]
                ) / len(images)
            chunk = cls(len(images), mean, offsets, products)
            total = chunk if total is None else total.merge(chunk)
        return total

    def merge(self, other):
        """Exact pooled moments of two sample sets (Chan, Golub & LeVeque 1979):
        the centred products plus the shifted mean-difference correction."""
        if other.offsets != self.offsets or other.image_shape != self.image_shape:
            raise ValueError("Moments of different windows or image shapes cannot be merged.")
        n1, n2 = self.n_samples, other.n_samples
        n = n1 + n2
        delta = other.mean - self.mean
        h, w, _ = self.image_shape
        products = (n1 * self.products + n2 * other.products) / n
        for k, (dy, dx) in enumerate(self.offsets):
            here, there = neighbour_slices(h, w, dy, dx)
            products[(k, *here)] += (n1 * n2 / n**2) * np.einsum(
                "ija,ijb->ijab", delta[here], delta[there]
            )
        return GridMoments(n, self.mean + delta * (n2 / n), self.offsets, products)

    @cached_property
    def _pattern(self):
        """Row and column of every stored entry, and where it sits in
        ``products``: the structure of :meth:`to_sparse`."""
        h, w, c = self.image_shape
        index = np.arange(h * w * c).reshape(h, w, c)
        rows, cols, positions = [], [], []
        flat = np.arange(self.products.size).reshape(self.products.shape)
        for k, (dy, dx) in enumerate(self.offsets):
            here, there = neighbour_slices(h, w, dy, dx)
            a = index[here][..., :, None]  # (., ., c, 1)
            b = index[there][..., None, :]  # (., ., 1, c)
            rows.append(np.broadcast_to(a, flat[(k, *here)].shape).ravel())
            cols.append(np.broadcast_to(b, flat[(k, *here)].shape).ravel())
            positions.append(flat[(k, *here)].ravel())
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(positions)

    def to_sparse(self):
        """The windowed covariance as a canonical symmetric ``csr_array`` of
        shape ``(D, D)``: every pair of features within the window, both
        ways, zeros included (so that moments on one window merge by their
        ``data``)."""
        rows, cols, positions = self._pattern
        values = self.products.ravel()[positions]
        # each unordered pair once: (0, 0) stores both channel orders already
        keep = rows <= cols
        return symmetric_csr(rows[keep], cols[keep], values[keep], self.n_features)
