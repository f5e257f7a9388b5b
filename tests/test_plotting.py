import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from skdensity import plotting  # noqa: E402


@pytest.mark.slow
def test_import_without_matplotlib_and_clear_error_when_called():
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.pyplot'] = None\n"
        "import skdensity.plotting as p\n"
        "try:\n    p.plot_matrix([[1.0]])\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "skdensity[plot]" in out.stdout


def test_image_grid_layout_and_scaling():
    imgs = np.arange(10 * 12, dtype=float).reshape(10, 12)
    fig = plotting.plot_image_grid(imgs, (3, 4), n_cols=4, title="t")
    assert len(fig.axes) == 10
    assert fig.axes[0].images[0].get_array().shape == (3, 4)
    fig = plotting.plot_filters(imgs - 50, (3, 4))
    lo, hi = fig.axes[0].images[0].get_clim()
    assert lo == -hi  # symmetric around zero
    with pytest.raises(ValueError, match="image_shape"):
        plotting.plot_image_grid(np.zeros((2, 12)))


def test_matrix_and_curves():
    ax = plotting.plot_matrix(np.diag([100.0] + [1.0] * 99), percentile=90)
    assert ax.images[0].get_clim() == (-1.0, 1.0)  # a few huge entries do not set the scale
    ax = plotting.plot_loss_curves({"a": [3, 2, 1], "b": [1, 0.5]}, logy=True)
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert ax.get_yscale() == "log"
