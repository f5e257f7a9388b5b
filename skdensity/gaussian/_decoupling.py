"""Features that the data decouple: where a masked Gaussian problem splits
into independent blocks, some of them single features solved in closed form."""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = ["decoupled_spans", "lone_variances"]


def decoupled_spans(pairs, S_E):
    """Where a problem that matches ``S`` on the mask splits exactly.

    Features are linked by the mask's edges on which ``S`` (``S_E``, its
    free entries) is nonzero. Returns ``(labels, spans)``: the connected
    component of each feature, and the index ranges ``(lo, hi)`` that hold
    the components of more than one feature (overlapping ranges merged).
    A feature outside every span is alone in its component. Estimators that
    match ``S`` on the mask (maximum likelihood) are block diagonal over the
    components: edges between components can be dropped, spans solved
    apart, and lone features solved in closed form. Ranges, not the
    components themselves, keep a grid mask's few diagonals intact.
    """
    D = pairs.n_features
    coupled = ~pairs.is_diag & (S_E != 0)
    graph = sp.coo_array(
        (np.ones(np.count_nonzero(coupled)), (pairs.rows[coupled], pairs.cols[coupled])),
        shape=(D, D),
    )
    n_components, labels = connected_components(graph, directed=False)
    if n_components == 1:
        return labels, [(0, D)]
    size = np.bincount(labels)
    first = np.full(n_components, D)
    last = np.zeros(n_components, dtype=int)
    np.minimum.at(first, labels, np.arange(D))
    np.maximum.at(last, labels, np.arange(D))
    spans = []
    for lo, hi in sorted(zip(first[size > 1], last[size > 1] + 1)):
        if spans and lo < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(int(hi), spans[-1][1]))
        else:
            spans.append((int(lo), int(hi)))
    return labels, spans


def lone_variances(S, alone):
    """``S[a, a]`` for the features ``alone`` in their block (see
    :func:`decoupled_spans`), whose precision is closed-form; a clear error
    if one is not positive."""
    variances = (S.diagonal() if sp.issparse(S) else np.diag(S))[alone]
    if not np.all(variances > 0):
        raise ValueError(
            "S is not positive definite: feature(s) "
            f"{alone[~(variances > 0)][:5].tolist()} have zero variance. Use reg > 0."
        )
    return variances
