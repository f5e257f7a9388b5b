"""Every example runs to the end, and neither it nor the landing page's
quickstart triggers a warning from skdensity or a non-converged solver."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))

# Warnings an example must never show a reader: a solver that did not
# converge, or any of skdensity's own (they all say something went wrong).
_RUNNER = """
import runpy, sys, warnings
import matplotlib
matplotlib.use("Agg")
from sklearn.exceptions import ConvergenceWarning
import skdensity.exceptions as ours
warnings.simplefilter("error", ConvergenceWarning)
for name in dir(ours):
    category = getattr(ours, name)
    if isinstance(category, type) and issubclass(category, Warning):
        warnings.simplefilter("error", category)
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def test_the_gallery_has_ten_examples():
    assert len(EXAMPLES) >= 10, [p.name for p in EXAMPLES]


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip(), "an example prints what it measured"


def test_examples_have_a_title_and_a_paragraph():
    for script in EXAMPLES:
        text = script.read_text()
        docstring = re.match(r'"""\n(.+?)\n(=+)\n\n(.+?)"""', text, flags=re.S)
        assert docstring, f"{script.name}: no sphinx-gallery title block"
        title, underline, body = docstring.groups()
        assert len(underline) >= len(title), script.name
        assert len(body.split()) >= 30, f"{script.name}: say what the example shows"
        assert "examples/output" not in text, f"{script.name}: show figures, do not write files"


def test_landing_page_quickstart_runs():
    index = (ROOT / "docs" / "index.rst").read_text()
    block = re.search(r"\.\. code-block:: python\n\n(.*?)\n\S", index, flags=re.S).group(1)
    code = "\n".join(line[3:] for line in block.splitlines())
    namespace = {}
    exec(compile(code, "index.rst", "exec"), namespace)
    assert set(namespace["labels"]) <= {-1, 1}
    assert namespace["search"].best_params_ == {"connectivity": 8}
