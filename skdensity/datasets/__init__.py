"""Embedded and local image data: MNIST digits, natural photographs, patches."""

from ._images import extract_patches, load_image_folder, load_natural_images
from ._mnist import fetch_mnist, load_mnist

__all__ = [
    "extract_patches",
    "fetch_mnist",
    "load_image_folder",
    "load_mnist",
    "load_natural_images",
]
