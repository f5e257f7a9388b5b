"""Warnings raised by skdensity."""

__all__ = ["IllConditionedWarning", "SeparableNoiseWarning"]


class IllConditionedWarning(UserWarning):
    """A transform or model is numerically close to singular.

    Raised, for example, when whitening divides by eigenvalues that are tiny
    relative to the largest one, so that the whitened data amplify noise.
    """


class SeparableNoiseWarning(UserWarning):
    """Data and noise are (near-)perfectly separable in noise-contrastive
    estimation: the loss goes to zero and the estimate is meaningless.

    Use a noise distribution closer to the data, or conditional NCE.
    """
