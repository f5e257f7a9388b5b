"""Colour images: masks that link every channel of neighbouring pixels, loaders
and patches in the same (height, width, channels) layout, plots, and models
that see the correlation between channels."""

import numpy as np
import pytest

from skdensity import MaskedGaussianMLE, MaskedGaussianSM, grid_mask
from skdensity.datasets import extract_patches, load_image_folder, load_natural_images


def test_colour_mask_links_all_channels_of_neighbouring_pixels():
    h, w, c = 3, 4, 3
    colour, gray = grid_mask((h, w, c)), grid_mask((h, w))
    assert colour.shape == (h * w * c,) * 2
    # feature (pixel p, channel a) sits at p * c + a, as reshape(h, w, c) lays it out
    p, a = np.divmod(np.arange(h * w * c), c)
    np.testing.assert_array_equal(colour, gray[p[:, None], p[None, :]])
    assert a.max() == c - 1
    np.testing.assert_array_equal(grid_mask((h, w, c), sparse=True).toarray(), colour)
    np.testing.assert_array_equal(grid_mask((h, w, 1)), gray)


def test_bad_colour_shapes_get_clear_errors():
    with pytest.raises(ValueError, match=r"\(height, width\) or \(height, width, channels\)"):
        grid_mask((2, 3, 4, 5))
    with pytest.raises(ValueError, match="holds 24 values but X has 25"):
        MaskedGaussianSM(image_shape=(2, 4, 3)).fit(np.random.default_rng(0).normal(size=(40, 25)))


def test_loaders_and_patches_keep_the_colour_layout(tmp_path):
    from PIL import Image

    images = load_natural_images(color=True).images
    assert [im.shape for im in images] == [(427, 640, 3)] * 2
    assert all(0 <= im.min() and im.max() <= 1 for im in images)
    gray = load_natural_images().images[0]
    np.testing.assert_allclose(images[0] @ [0.299, 0.587, 0.114], gray, atol=1e-12)

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "b.png")  # a grayscale file
    loaded = load_image_folder(tmp_path, color=True).images
    np.testing.assert_allclose(loaded[0], rgb / 255.0)
    np.testing.assert_allclose(loaded[1], np.repeat(rgb[..., :1], 3, axis=2) / 255.0)

    # every patch is a window of the image, flattened as reshape(h, w, c)
    image = np.arange(12 * 10 * 3, dtype=float).reshape(12, 10, 3)
    patches = extract_patches([image], (4, 5), 20, random_state=0)
    assert patches.shape == (20, 60)
    for patch in patches.reshape(-1, 4, 5, 3):
        y, x = divmod(int(patch[0, 0, 0]) // 3, 10)
        np.testing.assert_array_equal(patch, image[y : y + 4, x : x + 5])
    with pytest.raises(ValueError, match="different numbers of channels"):
        extract_patches([image, image[..., :2]], (4, 5), 4)
    with pytest.raises(ValueError, match="each a 3-D colour array"):
        extract_patches([image, image[..., 0]], (4, 5), 4)


def test_plots_show_colour_images():
    from skdensity.plotting import plot_image_grid

    X = np.random.default_rng(0).random((4, 5 * 6 * 3))
    fig = plot_image_grid(X, (5, 6, 3), n_cols=2)
    assert len(fig.axes) == 4
    assert fig.axes[0].images[0].get_array().shape == (5, 6, 3)


@pytest.mark.parametrize("Est", [MaskedGaussianSM, MaskedGaussianMLE])
def test_a_colour_model_beats_independent_channels(Est):
    patches = extract_patches(load_natural_images(color=True).images, (6, 6), 6000, random_state=0)
    train, test = patches[:5000], patches[5000:]
    joint = Est(image_shape=(6, 6, 3)).fit(train)
    assert joint.image_shape_ == (6, 6, 3)
    per_channel = sum(
        Est(image_shape=(6, 6))
        .fit(train.reshape(-1, 36, 3)[..., c])
        .score(test.reshape(-1, 36, 3)[..., c])
        for c in range(3)
    )
    # it sees how the channels of a pixel and its neighbours move together
    assert joint.score(test) > per_channel + 5.0
    assert joint.sample(3, random_state=0).shape == (3, 108)


def test_make_gmrf_draws_colour_fields():
    from skdensity.datasets import make_gmrf

    X, precision = make_gmrf(50_000, (3, 4, 2), random_state=0)
    P = precision.toarray()
    np.testing.assert_array_equal(P != 0, grid_mask((3, 4, 2)))
    np.testing.assert_allclose(np.cov(X.T) @ P, np.eye(24), atol=0.05)


@pytest.mark.parametrize("name", ["MaskedGaussianNCE", "MaskedGaussianCNCE"])
def test_nce_estimators_fit_colour_patches(name):
    import skdensity

    patches = extract_patches(load_natural_images(color=True).images, (5, 5), 3000, random_state=0)
    est = getattr(skdensity, name)(image_shape=(5, 5, 3), random_state=0).fit(patches[:2500])
    assert est.image_shape_ == (5, 5, 3)
    np.testing.assert_array_equal(est.mask_.toarray(), grid_mask((5, 5, 3)))
    # as good on held-out patches as score matching, within a few nats
    sm = MaskedGaussianSM(image_shape=(5, 5, 3)).fit(patches[:2500])
    assert est.score(patches[2500:]) > sm.score(patches[2500:]) - 5.0
