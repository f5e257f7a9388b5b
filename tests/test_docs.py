"""The documentation, example gallery included, builds without a single Sphinx warning."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    # docs/ and examples/ side by side: the gallery is built from ../examples
    src = tmp_path / "docs"
    shutil.copytree(
        ROOT / "docs",
        src,
        ignore=shutil.ignore_patterns(
            "_build", "generated", "auto_examples", "sg_execution_times.rst"
        ),
    )
    shutil.copytree(
        ROOT / "examples",
        tmp_path / "examples",
        ignore=shutil.ignore_patterns("output", "__pycache__"),
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-W",
            "--keep-going",
            "-q",
            str(src),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    html = tmp_path / "html"
    assert (html / "generated" / "skdensity.MaskedGaussianSM.html").exists()
    # the sphinx-gallery pages, one per example script
    for script in (ROOT / "examples").glob("*.py"):
        assert (html / "auto_examples" / f"{script.stem}.html").exists(), script.name
