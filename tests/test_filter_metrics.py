import numpy as np
import pytest

from skdensity.metrics import localization_index, orientation_index

y, x = np.mgrid[:16, :16]


def gabor(cx, cy, angle, width=1.5, period=4.0):
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    envelope = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width**2))
    return (envelope * np.cos(2 * np.pi * u / period)).ravel()


def test_gabors_are_localized_and_oriented_at_any_angle_and_place():
    filters = np.array([gabor(4, 5, 0.0), gabor(11, 10, np.pi / 3), gabor(8, 3, 2.0)])
    assert np.all(localization_index(filters) > 0.95)
    assert np.all(orientation_index(filters) > 0.6)


def test_gratings_are_oriented_not_localized_and_blobs_the_reverse():
    grating = np.cos(2 * np.pi * (x + 2 * y) / 8).ravel()
    assert orientation_index(grating)[0] == pytest.approx(1.0)
    assert localization_index(grating)[0] < 0.3  # about the window's quarter
    r2 = (x - 8) ** 2 + (y - 8) ** 2
    blob = (np.exp(-r2 / 2) - 0.5 * np.exp(-r2 / 8)).ravel()  # centre-surround
    assert localization_index(blob)[0] > 0.9
    assert orientation_index(blob)[0] < 1e-6


def test_noise_scores_low_on_both():
    noise = np.random.default_rng(0).normal(size=(200, 256))
    assert np.median(localization_index(noise)) < 0.4
    assert np.median(orientation_index(noise)) < 0.15


def test_rectangular_filters_and_scale_invariance():
    f = np.random.default_rng(1).normal(size=(5, 8 * 12))
    for index in (localization_index, orientation_index):
        np.testing.assert_allclose(index(f, (8, 12)), index(1e3 * f, (8, 12)))


@pytest.mark.parametrize("index", [localization_index, orientation_index])
def test_bad_filters_get_clear_errors(index):
    with pytest.raises(ValueError, match="not a square image"):
        index(np.ones((2, 10)))
    with pytest.raises(ValueError, match="holds 12 pixels, not 16"):
        index(np.ones((2, 16)), (3, 4))
    with pytest.raises(ValueError, match="filter 1 is zero"):
        index(np.r_[np.ones((1, 16)), np.zeros((1, 16))])
    with pytest.raises(ValueError, match="NaN"):
        index(np.full((1, 16), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        index(np.ones((2, 2, 4)))
