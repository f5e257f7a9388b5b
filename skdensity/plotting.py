"""Figures for density models of images (needs the ``plot`` extra).

matplotlib is imported only when a function is called, so
``import skdensity.plotting`` works without it.
"""

import math

import numpy as np
import scipy.sparse as sp

__all__ = ["plot_image_grid", "plot_filters", "plot_matrix", "plot_loss_curves"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skdensity.plotting needs matplotlib: pip install 'skdensity[plot]'."
        ) from exc
    return plt


def _as_images(images, image_shape):
    images = np.asarray(images, dtype=float)
    if images.ndim in (3, 4):  # (n, h, w) grayscale or (n, h, w, channels) colour
        return images
    if images.ndim != 2:
        raise ValueError(
            "images must be 2-D (n, features), 3-D (n, h, w) or 4-D (n, h, w, channels), "
            f"got {images.ndim}-D."
        )
    if image_shape is None:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"{images.shape[1]} pixels is not a square image: pass image_shape.")
        image_shape = (side, side)
    return images.reshape(len(images), *image_shape)


def plot_image_grid(
    images,
    image_shape=None,
    *,
    n_cols=8,
    symmetric=False,
    cmap="gray",
    vmin=None,
    vmax=None,
    title=None,
    figsize=None,
):
    """Show images (rows of a data matrix, or 3-D) in a grid.

    Parameters
    ----------
    images : array-like of shape (n, features), (n, h, w) or (n, h, w, channels)
    image_shape : tuple of int, default=None
        Needed for flattened non-square or colour images: ``(h, w)`` or
        ``(h, w, channels)``; colour images are shown in RGB, scaled from
        ``[vmin, vmax]`` (default [0, 1]).
    n_cols : int, default=8
    symmetric : bool, default=False
        Scale each image to ``[-max|x|, max|x|]`` (whitened data, filters).
    cmap : str, default="gray"
    vmin, vmax : float, default=None
        Common colour limits (ignored when ``symmetric``).
    title : str, default=None
    figsize : tuple, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.plotting import plot_image_grid
    >>> fig = plot_image_grid(np.random.default_rng(0).random((6, 16)), n_cols=3)
    >>> len(fig.axes)
    6
    """
    plt = _pyplot()
    imgs = _as_images(images, image_shape)
    n = len(imgs)
    n_cols = max(1, min(n_cols, n))
    n_rows = math.ceil(n / n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=figsize or (1.2 * n_cols, 1.2 * n_rows + 0.4), squeeze=False
    )
    for ax in axes.ravel()[n:]:
        fig.delaxes(ax)
    for ax, img in zip(axes.ravel(), imgs):
        if img.ndim == 3:  # colour: imshow takes RGB in [0, 1], so scale and clip
            if symmetric:
                lim = np.abs(img).max() or 1.0
                rgb = (img / lim + 1.0) / 2.0
            else:
                low = 0.0 if vmin is None else vmin
                high = 1.0 if vmax is None else vmax
                rgb = (img - low) / ((high - low) or 1.0)
            ax.imshow(np.clip(rgb, 0.0, 1.0))
        elif symmetric:
            lim = np.abs(img).max() or 1.0
            ax.imshow(img, cmap=cmap, vmin=-lim, vmax=lim)
        else:
            ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def plot_filters(filters, image_shape=None, *, n_cols=8, title=None):
    """First-layer filters (rows of ``filters_``) as images, each scaled
    symmetrically around zero.

    Parameters
    ----------
    filters : array-like of shape (n_filters, h*w)
    image_shape : tuple of int, default=None
    n_cols : int, default=8
    title : str, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.plotting import plot_filters
    >>> fig = plot_filters(np.random.default_rng(0).normal(size=(4, 9)))
    >>> len(fig.axes)
    4
    """
    return plot_image_grid(
        filters, image_shape, n_cols=n_cols, symmetric=True, cmap="RdBu_r", title=title
    )


def plot_matrix(matrix, *, ax=None, title=None, symmetric=True, percentile=99.5, cmap=None):
    """A covariance or precision matrix as an image.

    Parameters
    ----------
    matrix : array-like or sparse matrix of shape (n, n)
    ax : matplotlib Axes, default=None
    title : str, default=None
    symmetric : bool, default=True
        Colour limits symmetric around zero (precisions have signs).
    percentile : float, default=99.5
        Colour limit at this percentile of ``|matrix|`` so that a few large
        diagonal entries do not wash out the structure.
    cmap : str, default=None
        ``"RdBu_r"`` when symmetric, else ``"viridis"``.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from skdensity.plotting import plot_matrix
    >>> ax = plot_matrix(np.eye(5), title="identity")
    >>> ax.get_title()
    'identity'
    """
    plt = _pyplot()
    M = np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    lim = np.percentile(np.abs(M), percentile) or 1.0
    if symmetric:
        ax.imshow(M, cmap=cmap or "RdBu_r", vmin=-lim, vmax=lim)
    else:
        ax.imshow(M, cmap=cmap or "viridis", vmax=lim)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_loss_curves(curves, *, ax=None, xlabel="iteration", ylabel="loss", logy=False, title=None):
    """Convergence curves, one line per named curve.

    Parameters
    ----------
    curves : dict of str to array-like
    ax : matplotlib Axes, default=None
    xlabel, ylabel : str
    logy : bool, default=False
        Logarithmic y axis (positive values only).
    title : str, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> from skdensity.plotting import plot_loss_curves
    >>> ax = plot_loss_curves({"SM": [3, 2, 1.5], "NCE": [0.7, 0.6]})
    >>> len(ax.get_lines())
    2
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), np.asarray(values, dtype=float), label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    return ax
