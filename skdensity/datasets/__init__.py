"""Embedded and local image data (MNIST digits, natural photographs, patches)
and samples of a known Gaussian Markov random field."""

from ._images import extract_patches, load_image_folder, load_natural_images
from ._mnist import fetch_mnist, load_mnist
from ._synthetic import make_gmrf

__all__ = [
    "extract_patches",
    "fetch_mnist",
    "load_image_folder",
    "load_mnist",
    "load_natural_images",
    "make_gmrf",
]
