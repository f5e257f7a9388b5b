"""Warnings raised by skdensity."""

__all__ = ["IllConditionedWarning"]


class IllConditionedWarning(UserWarning):
    """A transform or model is numerically close to singular.

    Raised, for example, when whitening divides by eigenvalues that are tiny
    relative to the largest one, so that the whitened data amplify noise.
    """
