"""Standard errors of PoE scores: sqrt(diag(H^-1)) of the objective's Hessian.

The Hessian of both PoE objectives is a weighted graph Laplacian plus a diagonal
prior term: edge weights are the per-comparison curvatures (``w sig(d) sig(-d)`` for
PoE-BT, ``w`` for PoE-Gaussian) and the diagonal is the prior's curvature. It is
block-diagonal over the connected components, so each component is handled alone:

* ``exact``: a dense inverse per component (components of the same size are
  inverted together as one stacked array). With no prior the Laplacian is singular
  and the pseudo-inverse on the centred subspace is used, via
  ``pinv(L) = inv(L + 11'/k) - 11'/k`` for a connected component of k items. With a
  prior the variance is that of each score relative to its component's mean,
  ``var(s_a - mean) = X_aa - 2 (X 1)_a / k + 1'X1 / k^2`` with ``X = inv(H)``: the
  comparisons fix only differences, and the prior alone fixes the common level, whose
  variance (about ``2 / (k alpha)``) says nothing about the ranking; it would make the
  standard errors of a few items with many comparisons several times too wide and jump
  as ``alpha -> 0``. This is the ``alpha -> 0`` limit of the centred pseudo-inverse, and
  what the sandwich and the bootstrap measure. An item alone in its component keeps the
  prior's variance.
* ``local``: a one-pass approximation from the compiled core for large components,
  ``var_a ~= 1 / (H_aa - sum_b C_ab^2 / H_bb)`` (the Schur complement of item a with
  its neighbours' block replaced by its diagonal). It is exact on stars and, on
  random graphs of average degree 8 to 20, within a few percent of the exact values
  (``tests/test_standard_errors.py`` measures it).

The sandwich sqrt(diag(H^-1 M H^-1)) (:func:`sandwich_standard_errors`) is dense over
the whole problem up to ``SANDWICH_LIMIT`` (4000) items ("sandwich"); above it, dense per
component of up to ``EXACT_MAX_COMPONENT`` items and, for larger components, the local
approximation of :func:`local_sandwich_variance` ("sandwich-local"): the column of
H^-1 kept on the item and its neighbours as in ``local`` above, put into x'Mx. It runs
in O(comparisons); ``tests/test_sandwich.py`` measures it against the dense sandwich.
The cluster-robust sandwich is dense only (refused above ``SANDWICH_LIMIT``).

Isolated items with no prior (alpha = 0) carry no information: their se is NaN.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from pycomp._native import core

EXACT_MAX_COMPONENT = 2000
"""Largest component handled by the dense inverse when ``se_method="auto"``."""

EXACT_HARD_LIMIT = 8000
"""Largest component ``se_method="exact"`` accepts (a dense k x k float64 matrix)."""


def hessian_parts(
    scores: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    p: Optional[np.ndarray],
    weights: Optional[np.ndarray],
    *,
    model: str,
    alpha: float,
    beta: float,
    n_components: int = 1,
    n_threads: int = 0,
    device: str = "cpu",
) -> Tuple[np.ndarray, np.ndarray, float]:
    """Per-comparison curvature, per-item prior curvature and the variance scale.

    The PoE-BT parts come from the compiled core (``_core.bt_curvature``, or
    ``_core.device_bt_curvature`` on ``device`` "thrust" or "cuda"), the same
    per-comparison math the solvers use; the PoE-Gaussian residual variance comes from
    the core's objective. No formula of the Hessian is repeated here.

    Returns
    -------
    curv : ndarray, shape (m,)
    prior : ndarray, shape (n_items,)
    scale : float
        1 for PoE-BT; for PoE-Gaussian the residual variance
        sigma^2 = sum w r^2 / (comparisons with w > 0 - (n_items - n_components)).
    """
    if model == "bt":
        if device in ("thrust", "cuda"):
            curv, prior = core().device_bt_curvature(device, i, j, scores, weights, alpha)
        else:
            curv, prior = core().bt_curvature(i, j, scores, weights, alpha, n_threads)
        return curv, prior, 1.0
    w = np.ones(i.shape[0]) if weights is None else weights
    # The objective is 1/2 sum w r^2 + alpha/2 ||s||^2.
    F = core().objective(i, j, p, weights, scores, scores.shape[0], model="gaussian", alpha=alpha, beta=beta,
                         n_threads=n_threads)
    weighted_squares = max(2.0 * F - alpha * float(scores @ scores), 0.0)
    used = int(np.count_nonzero(w > 0))
    dof = max(used - (scores.shape[0] - n_components), 1)
    return w.astype(np.float64, copy=True), np.full(scores.shape[0], float(alpha)), weighted_squares / dof


def standard_errors(
    i: np.ndarray,
    j: np.ndarray,
    curv: np.ndarray,
    prior: np.ndarray,
    labels: np.ndarray,
    *,
    method: str = "auto",
    n_threads: int = 0,
    device: str = "cpu",
) -> Tuple[np.ndarray, str]:
    """sqrt(diag(H^-1)) for H = Laplacian(curv) + diag(prior), per component.

    Parameters
    ----------
    i, j : ndarray of int, shape (m,)
    curv : ndarray of float64, shape (m,)
        Non-negative curvature of each comparison.
    prior : ndarray of float64, shape (n_items,)
        Prior curvature of each item (0 without a prior).
    labels : ndarray of int, shape (n_items,)
        Connected component of each item.
    method : {"auto", "exact", "local"}
        "auto" uses the dense inverse for components of up to
        ``EXACT_MAX_COMPONENT`` items and the local approximation above.
    device : {"cpu", "thrust", "cuda"}
        Where the local approximation runs (the dense inverse is numpy's).

    Returns
    -------
    se : ndarray of float64, shape (n_items,)
    used : str
        "exact", "local" or "exact+local".
    """
    n = prior.shape[0]
    sizes = np.bincount(labels, minlength=labels.max() + 1)
    if method == "exact" and sizes.max() > EXACT_HARD_LIMIT:
        raise ValueError(
            f"se_method='exact' needs a dense matrix per component, but component {int(sizes.argmax())} "
            f"has {int(sizes.max())} items (limit {EXACT_HARD_LIMIT}); use se_method='local' or 'auto'"
        )
    limit = {"exact": EXACT_HARD_LIMIT, "local": 0, "auto": EXACT_MAX_COMPONENT}[method]
    exact_comp = sizes <= limit
    var = np.empty(n)
    exact_items = exact_comp[labels]
    used = set()
    if exact_items.any():
        var[exact_items] = _exact_variance(i, j, curv, prior, labels, sizes, exact_comp)[exact_items]
        used.add("exact")
    if not exact_items.all():
        if device in ("thrust", "cuda"):
            local = core().device_local_variance(device, i, j, curv, prior, n)
        else:
            local = core().local_variance(i, j, curv, prior, n, n_threads)
        var[~exact_items] = local[~exact_items]
        used.add("local")
    return np.sqrt(var), "+".join(sorted(used))


def _exact_variance(i, j, curv, prior, labels, sizes, exact_comp) -> np.ndarray:
    n = prior.shape[0]
    var = np.full(n, np.nan)
    pos = _positions_in_components(labels, sizes)
    edge_comp = labels[i]
    has_prior = np.bincount(labels, weights=(prior > 0).astype(float), minlength=sizes.shape[0]) > 0
    for k in np.unique(sizes[exact_comp]):
        comps = np.flatnonzero(exact_comp & (sizes == k))
        slot = np.full(sizes.shape[0], -1, dtype=np.int64)
        slot[comps] = np.arange(comps.size)
        sel = np.flatnonzero(slot[edge_comp] >= 0)
        H = _stacked_laplacian(comps.size, k, slot[edge_comp[sel]], pos[i[sel]], pos[j[sel]], curv[sel])
        items = np.flatnonzero(slot[labels] >= 0)
        H[slot[labels[items]], pos[items], pos[items]] += prior[items]
        # Components without a prior are singular along their constant vector.
        singular = ~has_prior[comps]
        diag = np.empty((comps.size, k))
        if np.any(singular):
            Hs = H[singular] + 1.0 / k
            diag[singular] = np.diagonal(_inverse(Hs), axis1=1, axis2=2) - 1.0 / k
        if not np.all(singular):
            X = _inverse(H[~singular])
            diag[~singular] = np.diagonal(X, axis1=1, axis2=2)
            if k > 1:  # relative to the component's mean: var(s_a - mean) = X_aa - 2 (X 1)_a / k + 1'X1 / k^2
                rows = X.sum(axis=2)
                diag[~singular] += -2.0 * rows / k + rows.sum(axis=1, keepdims=True) / k**2
        var[items] = diag[slot[labels[items]], pos[items]]
    isolated = (sizes[labels] == 1) & ~(prior > 0)
    var[isolated] = np.nan
    return np.maximum(var, 0.0)


def _inverse(H: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(H, hermitian=True)


SANDWICH_LIMIT = 4000
"""Most items of the dense sandwich over the whole problem (two n x n float64 matrices).

Above it ``se_method="sandwich"`` works per component: a dense sandwich for components
of up to ``EXACT_MAX_COMPONENT`` items, the local approximation
(:func:`local_sandwich_variance`) for larger ones."""


def sandwich_standard_errors(
    collapsed,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    model: str,
    alpha: float,
    beta: float,
    rows: Optional[tuple] = None,
    cluster: Optional[np.ndarray] = None,
    method: str = "auto",
) -> Tuple[np.ndarray, str]:
    """Sandwich (robust) standard errors: sqrt(diag(H^-1 M H^-1)).

    H is the Hessian of the objective (prior included) and M = sum_k g_k g_k' the
    sum over comparisons of the outer products of their gradients, which for a
    comparison of a and b is r_k (e_a - e_b) with r_k = w_k (sig(d_k) - p_k) (PoE-BT)
    or w_k (d_k + beta - p_k) (PoE-Gaussian). M is the Laplacian with pair weights
    sum_k r_k^2, computed exactly from the collapsed moments q0, q1, q2. With
    ``cluster`` (codes 0..G-1 per row of ``rows = (i, j, p, w)``),
    M = sum_c (sum_{k in c} g_k)(sum_{k in c} g_k)' instead: comparisons within a
    cluster may be correlated, clusters are independent.

    With alpha = 0 each component's H is singular along its constant vector and
    inv(H + 11'/k) is used: M annihilates that vector, so the result equals
    pinv(H) M pinv(H).

    Parameters
    ----------
    method : {"auto", "dense", "local"}
        "dense": dense n x n matrices over the whole problem, up to
        ``SANDWICH_LIMIT`` items. "local": :func:`local_sandwich_variance` for every
        item (no cluster). "auto": "dense" up to ``SANDWICH_LIMIT`` items; above, a
        dense sandwich per component of up to ``EXACT_MAX_COMPONENT`` items and the
        local approximation for larger components. The cluster-robust sandwich has no
        local form (its meat couples every pair of items a cluster touches), so
        ``cluster`` is refused above ``SANDWICH_LIMIT`` items.

    Returns
    -------
    se : ndarray of float64, shape (n_items,)
    used : str
        "sandwich" (dense, whole problem or per component), "sandwich-local" or
        "sandwich+sandwich-local".
    """
    n = scores.shape[0]
    if method not in ("auto", "dense", "local"):
        raise ValueError(f"method must be 'auto', 'dense' or 'local', got {method!r}")
    dense = method == "dense" or (method == "auto" and n <= SANDWICH_LIMIT)
    if cluster is not None and not dense:
        raise ValueError(
            f"se_method='sandwich' with cluster needs dense {n} x {n} matrices (limit {SANDWICH_LIMIT} items): "
            "the cluster-robust meat has no local approximation; use bootstrap=B with cluster for "
            "cluster-robust intervals of larger problems"
        )
    if method == "dense" and n > SANDWICH_LIMIT:
        raise ValueError(
            f"the dense sandwich needs {n} x {n} matrices (limit {SANDWICH_LIMIT} items); "
            "use the local approximation (se_method='sandwich' picks it) or bootstrap=B"
        )
    a, b = collapsed.a.astype(np.int64), collapsed.b.astype(np.int64)
    total, q0, q1, q2 = collapsed.total, collapsed.q0, collapsed.q1, collapsed.q2
    d = scores[a] - scores[b]
    if model == "bt":
        sig = 0.5 * (1.0 + np.tanh(0.5 * d))
        curv = total * sig * (1.0 - sig)
        ps = 0.5 * (1.0 + np.tanh(0.5 * scores))
        prior = 2.0 * alpha * ps * (1.0 - ps)
        centre = sig
    else:
        curv = total.astype(np.float64, copy=True)
        prior = np.full(n, float(alpha))
        centre = d + beta
    meat_pair = np.maximum(q0 * centre**2 - 2.0 * centre * q1 + q2, 0.0)
    sizes = np.bincount(labels, minlength=labels.max() + 1)
    isolated = (sizes[labels] == 1) & ~(prior > 0)
    if dense:
        H = _laplacian(n, a, b, curv)
        H[np.diag_indices(n)] += prior
        if alpha == 0.0:
            same = labels[:, None] == labels[None, :]
            H += same / sizes[labels][:, None]
        X = _inverse(H)
        if cluster is None:
            M = _laplacian(n, a, b, meat_pair)
        else:
            M = _cluster_meat(n, scores, rows, cluster, model=model, beta=beta)
        var = np.einsum("ij,ij->i", X @ M, X)
        var = np.maximum(var, 0.0)
        var[isolated] = np.nan
        return np.sqrt(var), "sandwich"
    small = sizes <= (EXACT_MAX_COMPONENT if method == "auto" else 0)
    var = np.empty(n)
    used = set()
    small_items = small[labels]
    if small_items.any():
        var[small_items] = _dense_component_sandwich(a, b, curv, meat_pair, prior, labels, sizes, small,
                                                     singular=alpha == 0.0)[small_items]
        used.add("sandwich")
    if not small_items.all():
        var[~small_items] = local_sandwich_variance(a, b, curv, prior, meat_pair, n)[~small_items]
        used.add("sandwich-local")
    var[isolated] = np.nan
    return np.sqrt(var), "+".join(sorted(used))


def local_sandwich_variance(
    a: np.ndarray, b: np.ndarray, curv: np.ndarray, prior: np.ndarray, meat: np.ndarray, n: int
) -> np.ndarray:
    """Local approximation of diag(H^-1 M H^-1) in O(comparisons) time and memory.

    H = D - C (D its diagonal: prior plus the summed curvature of each item's pairs, C_ab
    the curvature of pair ab) and M the Laplacian of the meat, pair weights m_ab and
    diagonal M_a = sum_b m_ab. With x = H^-1 e_a, (H^-1 M H^-1)_aa = x'Mx
    = sum_pairs m_uv (x_u - x_v)^2. The local Hessian approximation
    (``core().local_variance``) is the solution of H x = e_a with x kept on a and its
    neighbours: x_b = t_ab x_a for a neighbour b, t_ab = C_ab / D_b (the first Neumann
    term of row b of H x = 0), and x_a = v_a = 1 / (D_a - sum_b C_ab t_ab). Putting this
    column in x'Mx (pairs at a: m_ab (1 - t_ab)^2; pairs of a neighbour b with
    anything else: t_ab^2 m_bc, counting a pair between two neighbours as
    t_ab^2 + t_ac^2 instead of (t_ab - t_ac)^2) gives

        var_a ~= v_a^2 (M_a - 2 sum_b m_ab t_ab + sum_b t_ab^2 M_b).

    It is exact where the column is (a star's centre, any item of a two-item
    component with a prior), equals v_a when M = H without prior (the model's own
    variance), is never negative, and is O(comparisons) with np.bincount. Where the
    local Schur complement fails (v_a's fallback 1 / D_a, as in the core) the column is
    e_a / D_a and var_a = M_a / D_a^2. With alpha = 0 it approximates the centred
    pinv(H) M pinv(H) the way the local Hessian approximates pinv(H): dropping the
    far part of the column drops the constant shift that the centring removes (the
    hub of a star of leaves, whose centred variance is O(1/k), is the exception).
    ``tests/test_sandwich.py`` measures it against the dense sandwich.

    Parameters
    ----------
    a, b : ndarray of int, shape (m,)
        Pairs (repeated pairs are summed).
    curv, meat : ndarray of float64, shape (m,)
        Curvature C and meat weight m of each pair.
    prior : ndarray of float64, shape (n,)
    n : int

    Returns
    -------
    var : ndarray of float64, shape (n,)
        inf for an item with no curvature at all (an isolated item without prior).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key, slot = np.unique(lo * n + hi, return_inverse=True)
    C = np.bincount(slot, weights=curv, minlength=key.size)
    m = np.bincount(slot, weights=meat, minlength=key.size)
    u, v = key // n, key % n
    D = prior + np.bincount(u, weights=C, minlength=n) + np.bincount(v, weights=C, minlength=n)
    Md = np.bincount(u, weights=m, minlength=n) + np.bincount(v, weights=m, minlength=n)
    safe = np.where(D > 0, D, 1.0)
    t_uv = np.where(D[v] > 0, C / safe[v], 0.0)  # weight of v in the column of u
    t_vu = np.where(D[u] > 0, C / safe[u], 0.0)
    leak = np.bincount(u, weights=C * t_uv, minlength=n) + np.bincount(v, weights=C * t_vu, minlength=n)
    cross = np.bincount(u, weights=m * t_uv, minlength=n) + np.bincount(v, weights=m * t_vu, minlength=n)
    spill = np.bincount(u, weights=t_uv**2 * Md[v], minlength=n) + np.bincount(v, weights=t_vu**2 * Md[u], minlength=n)
    schur = D - leak
    ok = schur > 1e-12 * D  # the core's test (csrc/cpu/local_variance.cpp)
    x_a = 1.0 / np.where(ok, schur, safe)
    var = x_a**2 * np.maximum(np.where(ok, Md - 2.0 * cross + spill, Md), 0.0)
    var[~(D > 0)] = np.inf
    return var


def _dense_component_sandwich(a, b, curv, meat, prior, labels, sizes, chosen, *, singular: bool) -> np.ndarray:
    """diag(H^-1 M H^-1) per chosen component, stacked by size (NaN elsewhere)."""
    n = prior.shape[0]
    var = np.full(n, np.nan)
    pos = _positions_in_components(labels, sizes)
    pair_comp = labels[a]
    for k in np.unique(sizes[chosen]):
        comps_k = np.flatnonzero(chosen & (sizes == k))
        batch = max(1, (1 << 22) // (k * k))  # at most ~32 MB per stacked array
        for start in range(0, comps_k.size, batch):
            comps = comps_k[start:start + batch]
            slot = np.full(sizes.shape[0], -1, dtype=np.int64)
            slot[comps] = np.arange(comps.size)
            items = np.flatnonzero(slot[labels] >= 0)
            sel = np.flatnonzero(slot[pair_comp] >= 0)
            s, pa, pb = slot[pair_comp[sel]], pos[a[sel]], pos[b[sel]]
            H = _stacked_laplacian(comps.size, k, s, pa, pb, curv[sel])
            H[slot[labels[items]], pos[items], pos[items]] += prior[items]
            if singular:
                H += 1.0 / k
            M = _stacked_laplacian(comps.size, k, s, pa, pb, meat[sel])
            X = _inverse(H)
            diag = np.einsum("cij,cij->ci", X @ M, X)
            var[items] = np.maximum(diag[slot[labels[items]], pos[items]], 0.0)
    return var


def _positions_in_components(labels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each item's index within its component (items of a component in index order)."""
    n = labels.shape[0]
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)))
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - starts[labels[order]]
    return pos


def _stacked_laplacian(count: int, k: int, s, a, b, weight) -> np.ndarray:
    L = np.zeros((count, k, k))
    flat = L.reshape(-1)
    np.add.at(flat, (s * k + a) * k + a, weight)
    np.add.at(flat, (s * k + b) * k + b, weight)
    np.add.at(flat, (s * k + a) * k + b, -weight)
    np.add.at(flat, (s * k + b) * k + a, -weight)
    return L


def _laplacian(n: int, a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    L = np.zeros((n, n))
    flat = L.reshape(-1)
    np.add.at(flat, a * n + a, weight)
    np.add.at(flat, b * n + b, weight)
    np.add.at(flat, a * n + b, -weight)
    np.add.at(flat, b * n + a, -weight)
    return L


def _cluster_meat(n: int, scores: np.ndarray, rows: tuple, cluster: np.ndarray, *, model: str, beta: float) -> np.ndarray:
    """sum over clusters of g_c g_c', g_c the summed gradient of the cluster's comparisons."""
    i, j, p, w = rows
    i = i.astype(np.int64)
    j = j.astype(np.int64)
    pk = np.ones(i.shape[0]) if p is None else p
    wk = np.ones(i.shape[0]) if w is None else w
    d = scores[i] - scores[j]
    if model == "bt":
        r = wk * (0.5 * (1.0 + np.tanh(0.5 * d)) - pk)
    else:
        r = wk * (d + beta - pk)
    n_clusters = int(cluster.max()) + 1
    try:
        from scipy import sparse
    except ImportError:  # pragma: no cover - scipy comes with the cli extra
        G = np.zeros((n_clusters, n))
        np.add.at(G, (cluster, i), r)
        np.add.at(G, (cluster, j), -r)
        return G.T @ G
    G = sparse.coo_matrix(
        (np.concatenate([r, -r]), (np.concatenate([cluster, cluster]), np.concatenate([i, j]))),
        shape=(n_clusters, n),
    ).tocsr()
    return (G.T @ G).toarray()
