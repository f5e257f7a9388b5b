"""
Streaming data through partial_fit
==================================

The Gaussian estimators need only the data's sufficient statistics (count,
mean and covariance), which ``partial_fit`` merges exactly batch by batch,
then re-solves from the previous estimate. Data that never fit in memory
at once can be fitted, and the model can be watched as data arrive. Here
MNIST digits arrive in batches of 250: after each batch the held-out
log-likelihood of the 8-connected :class:`~skdensity.MaskedGaussianMLE` is
recorded, and at the end the streamed model is compared with one fitted on
all the digits at once.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

from skdensity import MaskedGaussianMLE
from skdensity.datasets import load_mnist

rng = np.random.default_rng(0)
X = load_mnist().data[rng.permutation(10_000)]
X = X + rng.uniform(0, 1 / 256, X.shape)  # dequantised
X_stream, X_test = X[:8000], X[8000:]

streamed = MaskedGaussianMLE(reg=1e-3)
seen, held_out, seconds = [], [], []
t0 = time.perf_counter()
for batch in np.array_split(X_stream, len(X_stream) // 250):
    streamed.partial_fit(batch)
    seconds.append(time.perf_counter() - t0)
    seen.append(streamed.n_samples_seen_)
    held_out.append(streamed.score(X_test))

t0 = time.perf_counter()
at_once = MaskedGaussianMLE(reg=1e-3).fit(X_stream)
fit_seconds = time.perf_counter() - t0

difference = abs(streamed.precision_ - at_once.precision_).max()
print(f"{len(seen)} batches, {seen[-1]} digits streamed in {seconds[-1]:.1f} s")
print(f"one fit on all the digits: {fit_seconds:.1f} s")
print(f"held-out log-likelihood: streamed {held_out[-1]:.2f}, at once {at_once.score(X_test):.2f}")
print(
    f"largest difference between the precisions: {difference:.1e} "
    f"(largest entry {np.abs(at_once.precision_).max():.1e})"
)

# %%
# The streamed and the one-shot model agree to the solver's tolerance. The
# held-out likelihood climbs quickly over the first thousand digits and
# flattens: a model with a few thousand free parameters needs a few
# thousand samples. Each update is one solve, warm-started from the previous
# estimate; when the intermediate models are not needed, larger batches
# make the stream cheaper (only the last solve matters).

fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.plot(seen, held_out, "o-", ms=3)
ax.set_xlabel("digits seen")
ax.set_ylabel("held-out log-likelihood (nats)")
ax.set_title("MaskedGaussianMLE.partial_fit on a stream of digits")
fig.tight_layout()
plt.show()
