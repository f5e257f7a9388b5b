"""Masked Gaussians at sizes where a dense (D, D) array is out of reach:
statistics on the solvers' window, sparse precisions, banded factors."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import skdensity.linalg._cholesky as cholesky
from skdensity import MaskedGaussianMLE, MaskedGaussianSM
from skdensity.datasets import make_gmrf
from skdensity.gaussian._grid_moments import GridMoments
from skdensity.gaussian._moments import SparseMoments, data_top_eigenvalue
from skdensity.linalg import CholeskyFactor
from skdensity.masks import grid_mask


def test_window_statistics_equal_the_dense_covariance_there():
    X, _ = make_gmrf(300, (9, 7), random_state=0)
    X += np.random.default_rng(1).normal(size=X.shape[1])  # a mean to remove
    dense = np.cov(X.T, bias=True)
    window = GridMoments.of(X, (9, 7), 2).to_sparse()
    # the 5x5 window: every pair of pixels at most two rows and two columns apart
    y, x = np.divmod(np.arange(63), 7)
    near = (np.abs(y[:, None] - y) <= 2) & (np.abs(x[:, None] - x) <= 2)
    assert np.array_equal(window.toarray() != 0, near)
    np.testing.assert_allclose(window.toarray()[near], dense[near], rtol=1e-12, atol=1e-14)
    # the column-product path of other masks agrees, and merges exactly
    pattern = SparseMoments.of_pattern(X, sp.csr_array(near))
    np.testing.assert_allclose(pattern.covariance.toarray(), window.toarray(), atol=1e-14)
    merged = SparseMoments.of_pattern(X[:100], near).merge(SparseMoments.of_pattern(X[100:], near))
    np.testing.assert_allclose(merged.covariance.toarray(), window.toarray(), atol=1e-14)
    np.testing.assert_allclose(merged.mean, X.mean(axis=0), rtol=1e-13)


def test_top_eigenvalue_from_the_data_without_the_covariance():
    X, _ = make_gmrf(500, (12, 12), random_state=0)
    exact = np.linalg.eigvalsh(np.cov(X.T, bias=True))[-1]
    assert data_top_eigenvalue(X, X.mean(axis=0)) == pytest.approx(exact, rel=1e-10)


def test_grid_and_user_mask_paths_give_the_same_fit():
    # D > 2048: the grid's shifted products against a user mask's column products
    X, _ = make_gmrf(600, (50, 50), connectivity=4, random_state=0)
    grid = MaskedGaussianSM(connectivity=4, reg=0).fit(X)
    user = MaskedGaussianSM(mask=grid_mask((50, 50), 4, sparse=True), reg=0).fit(X)
    assert sp.issparse(grid.precision_) and sp.issparse(grid.empirical_covariance_)
    assert abs(grid.precision_ - user.precision_).max() < 1e-10 * abs(grid.precision_).max()
    assert grid.eps_ == pytest.approx(user.eps_, rel=1e-10)


@pytest.mark.parametrize("Est", [MaskedGaussianSM, MaskedGaussianMLE])
def test_fewer_images_than_pixels_without_a_variance_floor(Est):
    # 300 images of 32 x 32 pixels: the dense covariance is singular, the
    # masked model is determined
    X, P = make_gmrf(300, (32, 32), random_state=0)
    est = Est(reg=0).fit(X)
    assert est.min_eigenvalue_ > 0 and np.isfinite(est.score(X))
    error = sp.linalg.norm(est.precision_ - P) / sp.linalg.norm(P)
    assert error < 0.22  # measured 0.17-0.18; the truth's own diagonal is 0.29 away


def test_maximum_likelihood_names_the_samples_it_needs():
    X, _ = make_gmrf(20, (32, 32), random_state=0)
    with pytest.raises(ValueError, match=r"needs at least 35 samples when reg=0 .* got 20"):
        MaskedGaussianMLE(reg=0).fit(X)
    MaskedGaussianMLE(reg=0.1).fit(X)  # a floor determines it


def test_partial_fit_streams_large_images():
    X, _ = make_gmrf(900, (48, 48), random_state=1)
    full = MaskedGaussianMLE(reg=0).fit(X)
    streamed = MaskedGaussianMLE(reg=0)
    for batch in np.array_split(X, 3):
        streamed.partial_fit(batch)
    np.testing.assert_allclose(
        streamed.empirical_covariance_.data, full.empirical_covariance_.data, atol=1e-12
    )
    assert abs(streamed.precision_ - full.precision_).max() < 1e-6 * abs(full.precision_).max()
    # score matching keeps an upper bound of the top eigenvalue across batches
    sm_full = MaskedGaussianSM(reg=0).fit(X)
    sm = MaskedGaussianSM(reg=0)
    for batch in np.array_split(X, 3):
        sm.partial_fit(batch)
    assert sm.empirical_top_eigenvalue_ >= sm_full.empirical_top_eigenvalue_ * (1 - 1e-12)
    assert sm.n_active_ == sm_full.n_active_ == 0  # the bound does not bind here
    assert abs(sm.precision_ - sm_full.precision_).max() < 1e-8 * abs(sm_full.precision_).max()


def test_reordered_factor_of_a_shuffled_grid(monkeypatch):
    # a mask with no narrow band as given, one after reverse Cuthill-McKee
    monkeypatch.setattr(cholesky, "_DENSE_MAX_FEATURES", 10)
    rng = np.random.default_rng(0)
    D = 400
    perm = rng.permutation(D)
    mask = grid_mask((20, 20), sparse=True)[perm][:, perm]
    A = sp.triu(sp.csr_array(mask, dtype=float) * -0.1, k=1)
    A = (A + A.T + 2 * sp.eye_array(D)).tocsr()
    upper = sp.triu(A).tocoo()
    factor = CholeskyFactor.of_pattern(upper.row, upper.col, upper.data, D)
    assert factor.banded and factor.perm is not None and factor.factor.shape[0] < 60
    dense = A.toarray()
    v = rng.normal(size=D)
    np.testing.assert_allclose(factor.solve(v), np.linalg.solve(dense, v), rtol=1e-10)
    assert factor.log_det() == pytest.approx(np.linalg.slogdet(dense)[1], rel=1e-12)
    np.testing.assert_allclose(factor.inverse(), np.linalg.inv(dense), atol=1e-13)
    Z = rng.normal(size=(3, D))
    # x[perm] = U^{-1} z: the draws' quadratic form under A is z'z
    X = factor.inverse_sqrt_rows(Z.copy())
    np.testing.assert_allclose(np.einsum("ij,jk,ik->i", X, dense, X), (Z**2).sum(1), rtol=1e-10)


def test_an_image_size_beyond_memory_is_refused_before_any_work():
    X = np.zeros((2, 4096 * 4096), dtype=np.float32)
    with pytest.raises(MemoryError, match=r"A masked fit of \(4096, 4096\) images .* needs"):
        MaskedGaussianSM(image_shape=(4096, 4096)).fit(X)


@pytest.mark.slow
def test_no_dense_matrix_is_ever_allocated():
    # 128 x 128 images: one (D, D) float64 array is 2 GiB, beyond the 1.5 GiB
    # of address space the child process gets. Fit (all four estimators),
    # stream, score and sample must all run; a dense attribute is refused
    # with a clear error.
    code = textwrap.dedent(
        """
        import resource
        limit = int(1.5 * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import numpy as np
        import warnings
        from skdensity import (
            MaskedGaussianCNCE, MaskedGaussianMLE, MaskedGaussianNCE, MaskedGaussianSM
        )
        from skdensity.datasets import make_gmrf

        X, _ = make_gmrf(1050, (128, 128), random_state=0)
        for Est in (MaskedGaussianSM, MaskedGaussianMLE):
            est = Est(reg=0).fit(X[:1000])
            est.partial_fit(X[1000:])
            assert np.isfinite(est.score(X[:20]))
            assert est.sample(3, random_state=0).shape == (3, 16384)
        # the noise-contrastive fits, with a sparse noise (NCE) or none (cNCE)
        warnings.simplefilter("ignore")  # NCE's noise is separable at this size
        for other in (
            MaskedGaussianNCE(reg=0, noise=est, noise_ratio=1, random_state=0),
            MaskedGaussianCNCE(reg=0, random_state=0),
        ):
            other.fit(X[:600])
            assert np.isfinite(other.score(X[:20]))
            assert other.sample(3, random_state=0).shape == (3, 16384)
        try:
            est.covariance_
        except MemoryError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "covariance_ of 16384 features (a dense 16384 x 16384 matrix) needs" in result.stdout


def test_dense_models_that_would_not_fit_say_so_before_allocating(monkeypatch):
    # With 1 MiB "available", the D x D matrices of 64 features (32 KiB each)
    # still fit, those of 1,024 features (8 MiB) do not: the error names the
    # dense object and the sparse alternative, before anything is allocated.
    from skdensity import GaussianDensity, MaskedGaussianCNCE, MaskedGaussianNCE
    from skdensity.utils import _memory

    monkeypatch.setattr(_memory, "available_memory", lambda: 2**20)
    X, _ = make_gmrf(200, (32, 32), random_state=0)
    with pytest.raises(MemoryError, match="GaussianDensity on 1024 features .* dense"):
        GaussianDensity().fit(X)
    with pytest.raises(MemoryError, match="noise='gaussian'.*MaskedGaussianSM"):
        MaskedGaussianNCE(noise="gaussian", random_state=0).fit(X)
    with pytest.raises(MemoryError, match="noise_shape='covariance' on 1024 features"):
        MaskedGaussianCNCE(noise_support="image", noise_shape="covariance").fit(X)
    small, _ = make_gmrf(200, (8, 8), random_state=0)
    GaussianDensity().fit(small)  # 64 features fit
