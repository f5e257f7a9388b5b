import numpy as np
import pytest
import scipy.sparse as sp

from skdensity.masks import check_mask, grid_mask


@pytest.mark.parametrize("conn, n_free", [(4, 2296), (8, 3754)])
def test_grid_mask_counts_mnist(conn, n_free):
    m = grid_mask((28, 28), conn)
    assert m.dtype == bool and m.shape == (784, 784)
    assert np.array_equal(m, m.T) and m.diagonal().all()
    assert (m.sum() - 784) // 2 + 784 == n_free


def test_grid_mask_neighbours_explicit():
    m = grid_mask((3, 4), 8)
    idx = np.arange(12).reshape(3, 4)
    for y in range(3):
        for x in range(4):
            for yy in range(3):
                for xx in range(4):
                    expect = max(abs(y - yy), abs(x - xx)) <= 1
                    assert m[idx[y, x], idx[yy, xx]] == expect
    m4 = grid_mask((3, 4), 4)
    assert m4[idx[0, 0], idx[0, 1]] and m4[idx[0, 0], idx[1, 0]]
    assert not m4[idx[0, 0], idx[1, 1]] and not m4[idx[1, 2], idx[0, 3]]


@pytest.mark.parametrize("shape", [(1, 5), (5, 1), (1, 1), (2, 2)])
def test_grid_mask_degenerate_shapes(shape):
    m = grid_mask(shape, 8)
    D = shape[0] * shape[1]
    # in a line every pixel links to its predecessor and successor only
    if 1 in shape:
        assert m.sum() == D + 2 * (D - 1)
    assert np.array_equal(m, m.T)


def test_grid_mask_sparse_equals_dense():
    s = grid_mask((5, 7), 4, sparse=True)
    assert sp.issparse(s)
    assert np.array_equal(s.toarray(), grid_mask((5, 7), 4))


@pytest.mark.parametrize("bad", [(0, 3), (3,), (2.5, 2), "ab"])
def test_grid_mask_bad_shape(bad):
    with pytest.raises(ValueError, match="image_shape"):
        grid_mask(bad)


def test_grid_mask_bad_connectivity():
    with pytest.raises(ValueError, match="connectivity"):
        grid_mask((3, 3), 6)


def test_check_mask_errors():
    good = grid_mask((2, 2), 4)
    assert check_mask(sp.csr_matrix(good), 4).dtype == bool
    asym = good.copy()
    asym[0, 3] = True
    with pytest.raises(ValueError, match="symmetric"):
        check_mask(asym, 4)
    with pytest.raises(ValueError, match="5 features"):
        check_mask(good, 5)
    nodiag = good.copy()
    nodiag[2, 2] = False
    with pytest.raises(ValueError, match="diagonal"):
        check_mask(nodiag, 4)
    with pytest.raises(ValueError, match="square"):
        check_mask(np.ones((2, 3)), 2)
