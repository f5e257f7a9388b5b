"""The compact L-BFGS inverse against the textbook two-loop recursion."""

import numpy as np
import pytest

from skdensity.linalg import LBFGSMemory, minimize_lbfgs


def two_loop(s_hist, y_hist, v, P, gamma):
    """Nocedal & Wright, Algorithm 7.4, initial matrix gamma * P."""
    q = v.copy()
    alphas = []
    for s, y in zip(reversed(s_hist), reversed(y_hist)):
        a = (s @ q) / (y @ s)
        alphas.append(a)
        q -= a * y
    q = gamma * P(q)
    for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
        q += (a - (y @ q) / (y @ s)) * s
    return q


def _problem(n=40, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    H = A @ A.T + n * np.eye(n)  # the Hessian the pairs come from
    d = rng.uniform(0.5, 2.0, size=n)
    return rng, H, lambda v: (v.T / d).T  # diagonal preconditioner, any shape


@pytest.mark.parametrize("memory", [1, 3, 7])
def test_compact_inverse_equals_two_loop(memory):
    rng, H, P = _problem()
    mem = LBFGSMemory(memory, P)
    for _ in range(10):  # more pairs than memory: the oldest are dropped
        s = rng.normal(size=len(H))
        assert mem.add(s, H @ s)
    assert len(mem) == memory
    gamma = (mem.s[-1] @ mem.y[-1]) / (mem.y[-1] @ P(mem.y[-1]))
    v = rng.normal(size=len(H))
    g = rng.normal(size=len(H))
    expected = two_loop(mem.s, mem.y, v, P, gamma)
    np.testing.assert_allclose(mem.inverse(g)(v), expected, rtol=1e-10)
    # several right-hand sides at once, as the projections' subspace steps use
    V = rng.normal(size=(len(H), 3))
    got = mem.inverse(g)(V)
    for j in range(3):
        np.testing.assert_allclose(got[:, j], two_loop(mem.s, mem.y, V[:, j], P, gamma), rtol=1e-10)


def test_secant_condition_and_negative_curvature_rejected():
    rng, H, P = _problem()
    mem = LBFGSMemory(5, P)
    s = rng.normal(size=len(H))
    assert not mem.add(s, -H @ s)  # negative curvature is not kept
    assert len(mem) == 0
    mem.add(s, H @ s)
    # The newest pair satisfies the secant equation H y = s exactly.
    np.testing.assert_allclose(mem.inverse(s)(H @ s), s, rtol=1e-10)


def test_empty_memory_is_scaled_preconditioner():
    rng, H, P = _problem()
    g = rng.normal(size=len(H))
    step = LBFGSMemory(5, P).inverse(g)(g)
    # gamma P g with gamma = 1 / sqrt(g' P g)
    np.testing.assert_allclose(step, P(g) / np.sqrt(g @ P(g)), rtol=1e-12)


def test_minimize_lbfgs_solves_a_quadratic():
    rng, H, P = _problem()
    b = rng.normal(size=len(H))
    result = minimize_lbfgs(
        lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b),
        np.zeros(len(H)),
        gtol=1e-10,
        ftol=0,
        precondition=P,
    )
    assert result.converged
    np.testing.assert_allclose(result.x, np.linalg.solve(H, b), rtol=0, atol=1e-8)
