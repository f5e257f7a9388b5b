"""Sphinx configuration.

Build: ``pip install -e '.[docs]'; sphinx-build -W docs docs/_build``. The
example gallery (sphinx-gallery, built from ``examples/``) is rendered from
the scripts' source without running them, so the build takes seconds; set
``SKDENSITY_GALLERY_RUN=1`` to execute the ``plot_*.py`` examples and embed
their figures and output (minutes on two cores).
"""

import os

project = "skdensity"
author = "skdensity developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
html_theme = "alabaster"
exclude_patterns = ["_build"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # reproduce_report.py is listed, never run by the build
    "plot_gallery": os.environ.get("SKDENSITY_GALLERY_RUN", "0") == "1",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "reference_url": {"skdensity": None},
}
