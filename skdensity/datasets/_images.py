"""Natural images and patches."""

from collections.abc import Mapping
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.image import extract_patches_2d
from sklearn.utils import Bunch, check_random_state

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _to_gray(rgb):
    """ITU-R BT.601 luma of an RGB uint8 image, as float in [0, 1]."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb / 255.0
    return rgb[..., :3] @ np.array([0.299, 0.587, 0.114]) / 255.0


def _to_color(rgb):
    """The RGB channels of a uint8 image, as float in [0, 1]."""
    return np.asarray(rgb, dtype=np.float64)[..., :3] / 255.0


def load_natural_images(*, color=False):
    """scikit-learn's two sample photographs as grayscale or colour images.

    Parameters
    ----------
    color : bool, default=False
        Return RGB images of shape (427, 640, 3) instead of grayscale ones.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images``: list of two float64 arrays of shape (427, 640) (or
        (427, 640, 3) with ``color``) in [0, 1]; ``filenames``; ``DESCR``.

    Examples
    --------
    >>> from skdensity.datasets import load_natural_images
    >>> [im.shape for im in load_natural_images().images]
    [(427, 640), (427, 640)]
    """
    from sklearn.datasets import load_sample_images

    raw = load_sample_images()
    convert = _to_color if color else _to_gray
    kind = "RGB" if color else "grayscale (BT.601 luma)"
    return Bunch(
        images=[convert(im) for im in raw.images],
        filenames=list(raw.filenames),
        DESCR="scikit-learn's sample photographs (china.jpg, flower.jpg) as "
        f"{kind} in [0, 1].\n\n" + raw.DESCR,
    )


def load_image_folder(path, *, extensions=IMAGE_EXTENSIONS, recursive=False, color=False):
    """Load every image in a folder as a float array in [0, 1].

    Parameters
    ----------
    path : str or path-like
        Folder holding the images (for example Flickr30k's ``images/``).
    extensions : tuple of str, default=common image types
        File name endings to read (case-insensitive).
    recursive : bool, default=False
        Also read sub-folders.
    color : bool, default=False
        Read RGB images of shape (height, width, 3) instead of grayscale ones
        (grayscale files are then repeated in three channels).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` (list of float64 arrays, 2-D or with ``color`` 3-D) and
        ``filenames``, sorted.

    Raises
    ------
    ValueError
        If ``path`` is not a folder, holds no image files, or a file cannot
        be decoded (the message names the file).

    Examples
    --------
    >>> from skdensity.datasets import load_image_folder
    >>> images = load_image_folder("my_photos/").images  # doctest: +SKIP
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder.")
    pattern = "**/*" if recursive else "*"
    files = sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in extensions
    )
    if not files:
        raise ValueError(f"No image files ({', '.join(extensions)}) found in {str(folder)!r}.")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                mode = "RGB" if color else "L"
                images.append(np.asarray(im.convert(mode), dtype=np.float64) / 255.0)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"Cannot read image file {str(f)!r}: {exc}") from exc
    return Bunch(images=images, filenames=[str(f) for f in files])


def _check_patch_size(patch_size):
    """``(height, width)`` as two positive ints, or a clear error."""
    try:
        ph, pw = patch_size
    except (TypeError, ValueError):
        raise ValueError(
            f"patch_size must be a pair (height, width), got {patch_size!r}."
        ) from None
    if not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in (ph, pw)):
        raise ValueError(
            f"patch_size must be a pair of positive integers (height, width), got {patch_size!r}."
        )
    return int(ph), int(pw)


def extract_patches(images, patch_size=(28, 28), n_patches=50000, random_state=None):
    """Random patches from one or more images, spread across all of them.

    Each image contributes in proportion to the number of patch positions
    it has (largest-remainder rounding), so a large image does not crowd
    out the others and every image that fits a patch is used.

    Parameters
    ----------
    images : 2-D array, 3-D array (n_images, h, w), or list of arrays
        Grayscale images, or a list of colour images of shape
        ``(h, w, channels)`` (pass a single colour image as ``[image]``).
    patch_size : tuple of int, default=(28, 28)
        ``(height, width)`` of each patch.
    n_patches : int, default=50000
        Total number of patches.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible patch positions.

    Returns
    -------
    patches : ndarray of shape (n_patches, height * width * channels)
        Row-major flattened patches, float64: a colour patch is laid out as
        ``reshape(height, width, channels)``, as :func:`~skdensity.grid_mask`
        with ``image_shape=(height, width, channels)`` expects.

    Examples
    --------
    >>> from skdensity.datasets import load_natural_images, extract_patches
    >>> P = extract_patches(load_natural_images().images, (8, 8), 1000, random_state=0)
    >>> P.shape
    (1000, 64)
    """
    if isinstance(images, Mapping):  # iterating a Bunch gives its keys
        raise ValueError(
            "images is a mapping (a Bunch?): pass its images, e.g. load_natural_images().images."
        )
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    images = [np.asarray(im, dtype=np.float64) for im in images]
    if not images:
        raise ValueError("images is empty.")
    if not (all(im.ndim == 2 for im in images) or all(im.ndim == 3 for im in images)):
        raise ValueError(
            "Each image must be a 2-D grayscale array, or each a 3-D colour array "
            f"(height, width, channels); got shapes {[im.shape for im in images]}."
        )
    if images[0].ndim == 3 and len({im.shape[2] for im in images}) > 1:
        raise ValueError(
            f"The colour images have different numbers of channels: "
            f"{sorted({im.shape[2] for im in images})}."
        )
    ph, pw = _check_patch_size(patch_size)
    if not isinstance(n_patches, Integral) or isinstance(n_patches, bool) or n_patches < 1:
        raise ValueError(f"n_patches must be a positive integer, got {n_patches!r}.")
    counts = np.array(
        [max(im.shape[0] - ph + 1, 0) * max(im.shape[1] - pw + 1, 0) for im in images]
    )
    if counts.sum() == 0:
        raise ValueError(
            f"No image is large enough for patches of size {tuple(patch_size)}: "
            f"shapes are {[im.shape for im in images]}."
        )
    if n_patches > counts.sum():
        raise ValueError(
            f"n_patches={n_patches} is more than the {counts.sum()} patch positions of size "
            f"{(ph, pw)} in these images: ask for at most {counts.sum()} patches, or pass "
            "smaller patches or more images."
        )
    if any(not np.all(np.isfinite(im)) for im in images):
        raise ValueError("images contain NaN or infinite values.")
    share = n_patches * counts / counts.sum()
    alloc = np.floor(share).astype(int)
    alloc[np.argsort(alloc - share)[: n_patches - alloc.sum()]] += 1
    rng = check_random_state(random_state)
    out = [
        extract_patches_2d(im, (ph, pw), max_patches=int(k), random_state=rng).reshape(k, -1)
        for im, k in zip(images, alloc)
        if k > 0
    ]
    patches = np.concatenate(out)
    return patches[rng.permutation(len(patches))]
