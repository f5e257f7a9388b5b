"""scikit-learn's private helpers, imported in one place.

They are not public API and move between releases; every module of
skdensity imports them from here, so a move is one edit.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import _assert_all_finite

__all__ = ["HasMethods", "Interval", "Options", "StrOptions", "_assert_all_finite", "_fit_context"]
