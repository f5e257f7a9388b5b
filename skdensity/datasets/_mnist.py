"""MNIST: the embedded 10,000-digit subset, and the full set on request."""

from importlib import resources

import numpy as np
from sklearn.utils import Bunch


def load_mnist(*, return_X_y=False):
    """Load the 10,000 MNIST digits shipped with skdensity (offline).

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (ndarray of shape (10000, 784), float64 in [0, 1]),
        ``target`` (ndarray of shape (10000,), int64 digit labels),
        ``images`` (ndarray of shape (10000, 28, 28), a view of ``data``),
        ``DESCR`` (provenance and credits). The rows are sorted by label:
        shuffle before splitting.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from skdensity.datasets import load_mnist
    >>> mnist = load_mnist()
    >>> mnist.data.shape, mnist.images.shape, float(mnist.data.max())
    ((10000, 784), (10000, 28, 28), 1.0)
    """
    base = resources.files("skdensity.datasets")
    with (base / "data" / "mnist10k.npz").open("rb") as f, np.load(f) as npz:
        images = npz["images"].astype(np.float64) / 255.0
        target = npz["labels"].astype(np.int64)
    data = images.reshape(len(images), -1)
    if return_X_y:
        return data, target
    descr = (base / "descr" / "mnist.rst").read_text(encoding="utf-8")
    return Bunch(
        data=data,
        target=target,
        images=data.reshape(-1, 28, 28),
        target_names=np.arange(10),
        DESCR=descr,
    )


def fetch_mnist(*, data_home=None, return_X_y=False):
    """Download the full 70,000-image MNIST from OpenML (needs a network).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder, as in :func:`sklearn.datasets.fetch_openml`.
    return_X_y : bool, default=False
        If True, return ``(data, target)``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` or tuple
        Same fields as :func:`load_mnist`.

    Raises
    ------
    ConnectionError
        When OpenML cannot be reached; use :func:`load_mnist` offline.

    Examples
    --------
    >>> from skdensity.datasets import fetch_mnist
    >>> mnist = fetch_mnist()  # doctest: +SKIP
    """
    from urllib.error import URLError

    from sklearn.datasets import fetch_openml

    try:
        raw = fetch_openml("mnist_784", version=1, as_frame=False, data_home=data_home)
    except (URLError, OSError) as exc:
        raise ConnectionError(
            "Could not download MNIST from OpenML (are you offline?). "
            "load_mnist() returns the embedded 10,000-digit subset without a network."
        ) from exc
    data = raw.data.astype(np.float64) / 255.0
    target = raw.target.astype(np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=data.reshape(-1, 28, 28),
        target_names=np.arange(10),
        DESCR=raw.DESCR,
    )
