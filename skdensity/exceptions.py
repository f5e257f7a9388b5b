"""Warnings raised by skdensity."""

__all__ = ["IllConditionedWarning", "SeparableNoiseWarning", "UnreliableNormalizerWarning"]


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


class UnreliableNormalizerWarning(UserWarning):
    """Annealed importance sampling rests on few chains: one or a few carry
    nearly all the weight, so the estimated log-normaliser (and with it every
    normalised log-density) may be off by more than its standard error says.

    Raise the number of temperatures or chains.
    """
