"""Sphinx configuration.

Build: ``pip install -e '.[docs]'; sphinx-build -W docs docs/_build``. The
example gallery (sphinx-gallery, built from ``examples/``) is executed, so
its pages show each example's output and figures (a few minutes on two
cores); ``SKDENSITY_GALLERY_RUN=0`` renders the scripts without running them.
"""

import os
from datetime import date

import skdensity

project = "skdensity"
author = "skdensity developers"
_first_year, _year = 2026, date.today().year
copyright = f"{_first_year}{f'-{_year}' if _year > _first_year else ''}, {author}"
version = release = skdensity.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
exclude_patterns = ["_build"]

html_theme = "pydata_sphinx_theme"  # the theme of scikit-learn, numpy and scipy
html_title = f"skdensity {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "auto_examples/index": []}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # reproduce_report.py is listed, never run by the build
    "plot_gallery": os.environ.get("SKDENSITY_GALLERY_RUN", "1") == "1",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "reference_url": {"skdensity": None},
    "matplotlib_animations": False,
    "remove_config_comments": True,
}
