"""The masked statistics computed by Dask on a cluster of worker processes
equal the in-memory ones, and so do the fits."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from skdensity import MaskedGaussianMLE, MaskedGaussianNCE, MaskedGaussianSM  # noqa: E402
from skdensity.datasets import make_gmrf  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def relative_gap(a, b):
    return abs(a.precision_ - b.precision_).max() / abs(b.precision_).max()


@pytest.mark.slow
@pytest.mark.parametrize("Est", [MaskedGaussianSM, MaskedGaussianMLE])
def test_fit_on_a_dask_array_equals_the_in_memory_fit(client, Est):
    X, _ = make_gmrf(900, (12, 12), random_state=0)
    X += 3.0
    chunked = da.from_array(X, chunks=(200, 50))  # rows and columns split
    distributed_fit = Est(reg=0).fit(chunked)
    in_memory = Est(reg=0).fit(X)
    assert distributed_fit.n_features_in_ == 144
    assert relative_gap(distributed_fit, in_memory) < 1e-12
    np.testing.assert_allclose(distributed_fit.location_, in_memory.location_, rtol=1e-13)
    if Est is MaskedGaussianSM:
        assert distributed_fit.eps_ == pytest.approx(in_memory.eps_, rel=1e-12)
    # partial_fit on Dask batches merges exactly too
    streamed = Est(reg=0)
    for start in range(0, 900, 300):
        streamed.partial_fit(chunked[start : start + 300])
    assert streamed.n_samples_seen_ == 900
    if Est is MaskedGaussianMLE:
        assert relative_gap(streamed, in_memory) < 1e-8
    np.testing.assert_allclose(
        streamed.empirical_covariance_.data, in_memory.empirical_covariance_.data, atol=1e-12
    )


@pytest.mark.slow
def test_dask_input_errors_in_the_users_terms(client):
    X, _ = make_gmrf(100, (6, 6), random_state=0)
    est = MaskedGaussianMLE(reg=0).fit(da.from_array(X, chunks=50))
    with pytest.raises(ValueError, match="X has 16 features, but MaskedGaussianMLE is expecting"):
        est.partial_fit(da.from_array(X[:, :16], chunks=50))
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        MaskedGaussianMLE(reg=0).fit(da.from_array(bad, chunks=50))
    with pytest.raises(ValueError, match="2-D"):
        MaskedGaussianMLE().fit(da.from_array(X.ravel(), chunks=500))
    # NCE needs the samples themselves: the array is brought into memory
    nce = MaskedGaussianNCE(random_state=0).fit(da.from_array(X, chunks=50))
    assert nce.precision_.shape == (36, 36)
