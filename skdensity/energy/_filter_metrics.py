"""How localized and how oriented learned filters are: the two properties that
set natural-image features (Gabor-like, as in V1 and ICA) apart from
whole-patch gratings or noise."""

import numpy as np

__all__ = ["localization_index", "orientation_index"]


def _as_filter_images(filters, image_shape):
    filters = np.asarray(filters, dtype=np.float64)
    if filters.ndim == 1:
        filters = filters[None, :]
    if filters.ndim != 2 or filters.shape[0] == 0:
        raise ValueError(
            f"filters must be a 2-D array (one filter per row), got shape {filters.shape}."
        )
    if not np.all(np.isfinite(filters)):
        raise ValueError("filters contain NaN or infinity.")
    D = filters.shape[1]
    if image_shape is None:
        side = int(round(np.sqrt(D)))
        if side * side != D:
            raise ValueError(
                f"{D} features are not a square image; pass image_shape=(height, width)."
            )
        image_shape = (side, side)
    h, w = (int(s) for s in image_shape)
    if h * w != D:
        raise ValueError(f"image_shape {tuple(image_shape)} holds {h * w} pixels, not {D}.")
    energy = np.sum(filters**2, axis=1)
    if np.any(energy == 0):
        raise ValueError(f"filter {int(np.argmin(energy))} is zero: it has no shape to measure.")
    return filters.reshape(-1, h, w)


def localization_index(filters, image_shape=None):
    """Share of each filter's energy inside its best window of half the side.

    The window is ``ceil(height / 2) x ceil(width / 2)`` pixels, slid over
    every position inside the patch; the index is the largest share of the
    filter's squared weights it holds. A filter confined to a quarter of the
    patch scores 1; a grating or noise spread over the whole patch scores
    about 1/4, the window's share of the area.

    Parameters
    ----------
    filters : array-like of shape (n_filters, height * width)
        One filter per row, in pixel space, flattened in row-major order.
    image_shape : tuple of int, default=None
        ``(height, width)``; None means square.

    Returns
    -------
    index : ndarray of shape (n_filters,)
        Values in ``(0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.metrics import localization_index
    >>> spot = np.zeros((16, 16)); spot[3:6, 10:13] = 1.0
    >>> localization_index(spot.ravel()).round(3)
    array([1.])
    """
    images = _as_filter_images(filters, image_shape)
    energy = images**2
    n, h, w = energy.shape
    bh, bw = (h + 1) // 2, (w + 1) // 2
    # window sums from a zero-padded 2-D cumulative sum
    c = np.zeros((n, h + 1, w + 1))
    c[:, 1:, 1:] = energy.cumsum(axis=1).cumsum(axis=2)
    windows = c[:, bh:, bw:] - c[:, :-bh, bw:] - c[:, bh:, :-bw] + c[:, :-bh, :-bw]
    return windows.reshape(n, -1).max(axis=1) / energy.reshape(n, -1).sum(axis=1)


def orientation_index(filters, image_shape=None):
    """How much of each filter's spectral power lies along one orientation.

    The length of the power-weighted mean of ``exp(2 i theta)`` over the
    filter's 2-D Fourier spectrum (mean removed), ``theta`` the orientation
    of each frequency: 1 for a grating or an edge (all power along one
    orientation), near 0 for a centre-surround blob or white noise. The
    angle is doubled because ``theta`` and ``theta + pi`` are one
    orientation.

    Parameters
    ----------
    filters : array-like of shape (n_filters, height * width)
        One filter per row, in pixel space, flattened in row-major order.
    image_shape : tuple of int, default=None
        ``(height, width)``; None means square.

    Returns
    -------
    index : ndarray of shape (n_filters,)
        Values in ``[0, 1]``; NaN for a filter that is constant (no power
        away from the mean).

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.metrics import orientation_index
    >>> y, x = np.mgrid[:16, :16]
    >>> grating = np.cos(2 * np.pi * (x + y) / 8)
    >>> orientation_index(grating.ravel()).round(3)
    array([1.])
    """
    images = _as_filter_images(filters, image_shape)
    n, h, w = images.shape
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(centred)) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    phase = np.exp(2j * np.arctan2(ky, kx))
    phase[0, 0] = 0.0  # the mean has no orientation
    total = power.reshape(n, -1).sum(axis=1)
    resultant = np.abs(np.tensordot(power, phase, axes=([1, 2], [0, 1])))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, resultant / np.where(total > 0, total, 1.0), np.nan)
