import numpy as np
import pytest

from skdensity.datasets import (
    extract_patches,
    fetch_mnist,
    load_image_folder,
    load_mnist,
    load_natural_images,
)


def test_load_mnist():
    b = load_mnist()
    assert b.data.shape == (10000, 784) and b.data.dtype == np.float64
    assert b.data.min() == 0.0 and b.data.max() == 1.0
    assert b.images.shape == (10000, 28, 28)
    assert np.array_equal(b.images[7].ravel(), b.data[7])
    counts = np.bincount(b.target)
    assert counts.tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert "LeCun" in b.DESCR and "Cazala" in b.DESCR
    X, y = load_mnist(return_X_y=True)
    assert np.array_equal(X, b.data) and np.array_equal(y, b.target)
    # digits, not noise: mean stroke mass is in the centre of the image
    m = b.images.mean(0)
    assert m[10:18, 10:18].mean() > 5 * m[:3].mean()


def test_fetch_mnist_offline_error(monkeypatch):
    from urllib.error import URLError

    import sklearn.datasets

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(ConnectionError, match="load_mnist"):
        fetch_mnist()


def test_load_natural_images():
    b = load_natural_images()
    assert len(b.images) == 2
    for im in b.images:
        assert im.shape == (427, 640) and im.dtype == np.float64
        assert 0 <= im.min() and im.max() <= 1 and im.std() > 0.05


def test_load_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8) for _ in range(2)]
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"im{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    b = load_image_folder(tmp_path)
    assert len(b.images) == 2 and b.images[0].shape == (20, 30)
    expect = np.asarray(Image.fromarray(arrays[0]).convert("L"), float) / 255
    np.testing.assert_allclose(b.images[0], expect)


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="No image files"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image_folder(tmp_path)


def test_extract_patches_spread_and_reproducible():
    a = np.zeros((40, 40))
    b = np.ones((80, 40))  # about twice a's patch positions
    P = extract_patches([a, b], (8, 8), 300, random_state=0)
    assert P.shape == (300, 64)
    n_b = int((P.mean(1) == 1).sum())
    share_b = (73 * 33) / (73 * 33 + 33 * 33)
    assert abs(n_b - 300 * share_b) <= 1
    np.testing.assert_array_equal(P, extract_patches([a, b], (8, 8), 300, random_state=0))
    im = load_natural_images().images
    Q = extract_patches(im, (28, 28), 500, random_state=1)
    assert Q.shape == (500, 784) and Q.std() > 0.05


def test_extract_patches_errors():
    with pytest.raises(ValueError, match="large enough"):
        extract_patches(np.zeros((5, 5)), (8, 8), 10)
    with pytest.raises(ValueError, match="n_patches"):
        extract_patches(np.zeros((10, 10)), (8, 8), 0)
    with pytest.raises(ValueError, match="NaN"):
        extract_patches(np.full((10, 10), np.nan), (8, 8), 3)
    # the loader's Bunch itself, not its images: iterating it gives its keys
    with pytest.raises(ValueError, match=r"load_natural_images\(\)\.images"):
        extract_patches(load_natural_images(), (8, 8), 3)


def test_make_gmrf_draws_from_its_precision():
    from skdensity.datasets import make_gmrf
    from skdensity.masks import grid_mask

    X, precision = make_gmrf(100_000, (5, 6), connectivity=8, random_state=0)
    assert X.shape == (100_000, 30)
    P = precision.toarray()
    np.testing.assert_array_equal(P != 0, grid_mask((5, 6), 8))  # support is the mask
    assert np.linalg.eigvalsh(P).min() > 0
    # the sample covariance inverts the precision (to sampling error)
    np.testing.assert_allclose(np.cov(X.T) @ P, np.eye(30), atol=0.03)
    # reproducible; a 4-connected field has the narrower support
    X2, P2 = make_gmrf(10, (5, 6), connectivity=4, random_state=1)
    X3, _ = make_gmrf(10, (5, 6), connectivity=4, random_state=1)
    np.testing.assert_array_equal(X2, X3)
    np.testing.assert_array_equal(P2.toarray() != 0, grid_mask((5, 6), 4))


def test_make_gmrf_rejects_bad_parameters():
    from skdensity.datasets import make_gmrf

    for bad, match in (
        ({"n_samples": 0}, "n_samples"),
        ({"coupling": 0}, "coupling"),
        ({"coupling": 2.0}, "coupling"),
        ({"connectivity": 6}, "connectivity"),
    ):
        with pytest.raises(ValueError, match=match):
            make_gmrf(**{"n_samples": 5, **bad})
