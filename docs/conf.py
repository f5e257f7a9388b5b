"""Sphinx configuration (build: pip install -e '.[docs]'; sphinx-build docs docs/_build)."""

project = "skdensity"
author = "skdensity developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.mathjax", "numpydoc"]
autosummary_generate = True
numpydoc_show_class_members = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
