"""The documentation builds without a single Sphinx warning, with the example
gallery executed: every example page shows its output and a real thumbnail."""

import os
import re
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
    env = {**os.environ, "SKDENSITY_GALLERY_RUN": "1", "MPLBACKEND": "Agg"}
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
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    html = tmp_path / "html"
    assert (html / "generated" / "skdensity.MaskedGaussianSM.html").exists()
    # the sphinx-gallery pages, one per example script
    for script in (ROOT / "examples").glob("*.py"):
        assert (html / "auto_examples" / f"{script.stem}.html").exists(), script.name
    # executed: each plot_ page shows the printed output and a figure, and the
    # gallery's thumbnails are the examples' figures (all different), not
    # sphinx-gallery's placeholder
    thumbs = []
    for script in (ROOT / "examples").glob("*.py"):
        page = (html / "auto_examples" / f"{script.stem}.html").read_text()
        if script.stem.startswith("plot_"):
            assert "sphx-glr-script-out" in page, f"{script.name}: no output on its page"
            assert f"sphx_glr_{script.stem}_001.png" in page, f"{script.name}: no figure"
        thumbs.append((html / "_images" / f"sphx_glr_{script.stem}_thumb.png").read_bytes())
    assert len(set(thumbs)) == len(thumbs)
    # the landing page: the theme, the quickstart and a filled copyright
    index = (html / "index.html").read_text()
    assert "pydata" in index.lower()
    assert "Quickstart" in index and "DensityOutlierDetector" in index
    assert re.search(r"©\s*Copyright\s+20\d\d(-20\d\d)?, skdensity developers", index)
