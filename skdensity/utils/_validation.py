"""Validation steps shared by the estimators' public methods."""

import warnings
from contextlib import contextmanager
from numbers import Integral

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["check_n_samples", "restore_on_failure", "validate_fitted", "warn_unconverged"]


def check_n_samples(n_samples):
    """Validate the ``n_samples`` argument of ``sample``."""
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    return int(n_samples)


def validate_fitted(estimator, X):
    """The first step of every method of a fitted estimator that reads
    data: fitted check, then float64 data of the width seen in fit."""
    check_is_fitted(estimator)
    return validate_data(estimator, X, dtype=np.float64, reset=False)


@contextmanager
def restore_on_failure(estimator):
    """Context: if the body raises, the estimator's attributes are put back as
    they were, so a failed fit never leaves a half-updated estimator (say the
    new width in ``n_features_in_`` with the old parameters)."""
    saved = dict(vars(estimator))
    try:
        yield
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(saved)
        raise


def warn_unconverged(solver, residual, *, tol, n_iter, max_iter, steps="iterations"):
    """ConvergenceWarning that names the right remedy: a solver out of budget
    needs a larger ``max_iter``; one that stalled before it (rounding) only a
    looser ``tol``, and its estimate is as good as float64 makes it."""
    if n_iter >= max_iter:
        remedy = "increase max_iter"
    else:
        remedy = (
            "it stalled before max_iter at the accuracy rounding allows; the estimate is "
            f"usable, and tol={residual * 1.5:.1g} would accept it"
        )
    warnings.warn(
        f"{solver} stopped with KKT residual {residual:.2e} > tol={tol:g} after "
        f"{n_iter} {steps}; {remedy}.",
        ConvergenceWarning,
        stacklevel=3,
    )
