"""Planning which pairs of items to compare.

Every planner returns an int64 array of shape (m, 2) of unordered pairs
``(i, j)`` with ``i < j``, sorted, no duplicates and no self-pairs; the judge
then shows each pair in both orders. Items are integers ``0..n_items-1``. With
``groups`` (one label per item), pairs are only formed within a group, e.g.
summaries of the same article.

Designs
-------
:func:`all_pairs`
    Every pair (within each group): n (n - 1) / 2 per group.
:func:`random_pairs`
    A random near-regular design: each item in ``k`` pairs (``k - 1`` for at
    most one item per group when ``k * n`` is odd), deterministic given ``seed``.
:func:`greedy_pairs`
    Information-greedy design (the PoE paper's selection): repeatedly add the pair
    whose score difference is most uncertain under the Gaussian product of
    experts, i.e. the pair maximising the effective resistance
    ``(e_i - e_j)^T (L + lambda I)^{-1} (e_i - e_j)`` of the comparison graph's
    Laplacian ``L``; adding that pair most increases ``det(L + lambda I)`` (most
    shrinks the volume of the score uncertainty). Exact (Sherman-Morrison
    updates) for groups up to ``exact_max`` items; above that, effective
    resistances are estimated by random projection (Spielman-Srivastava) with
    a few conjugate-gradient Laplacian solves per round and a batch of
    disjoint pairs is added per round, which scales to 100k items.

The ``active`` design (:mod:`pycomp.active`) is not planned here: it chooses
pairs between rounds of judging, from the scores so far.
"""
from __future__ import annotations

import inspect
import math
import warnings
from typing import Optional, Sequence

import numpy as np

__all__ = ["all_pairs", "random_pairs", "greedy_pairs", "plan_pairs", "degrees", "DESIGNS", "ADAPTIVE_DESIGNS"]

DESIGNS = ("all", "random", "greedy")

ADAPTIVE_DESIGNS = ("active",)
"""Designs that choose pairs between rounds of judging (:mod:`pycomp.active`), so have no plan beforehand."""


def _as_groups(n_items: int, groups: Optional[Sequence]) -> list:
    """Return a list of int64 arrays, one per group, of the item indices in it (input order)."""
    if n_items < 0:
        raise ValueError(f"n_items={n_items} must be >= 0")
    if groups is None:
        return [np.arange(n_items, dtype=np.int64)]
    labels = np.asarray(groups)
    if labels.shape != (n_items,):
        raise ValueError(f"groups has shape {labels.shape}; expected one label per item, shape ({n_items},)")
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    members = []
    for g in order:
        members.append(np.flatnonzero(inverse == g).astype(np.int64))
    return members


def _finish(pairs: list) -> np.ndarray:
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    out = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in pairs], axis=0)
    out = np.sort(out, axis=1)
    out = np.unique(out, axis=0)
    return out


def degrees(pairs: np.ndarray, n_items: int) -> np.ndarray:
    """Number of pairs each item appears in, shape (n_items,)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return np.bincount(pairs.ravel(), minlength=n_items)


def all_pairs(n_items: int, groups: Optional[Sequence] = None) -> np.ndarray:
    """Every unordered pair of items (within each group).

    Parameters
    ----------
    n_items : int
    groups : array-like, shape (n_items,), optional
        Group label of each item; pairs never cross groups.

    Returns
    -------
    numpy.ndarray, int64, shape (m, 2)
        Pairs ``(i, j)`` with ``i < j``.

    Examples
    --------
    >>> all_pairs(3).tolist()
    [[0, 1], [0, 2], [1, 2]]
    """
    out = []
    for members in _as_groups(n_items, groups):
        a, b = np.triu_indices(len(members), k=1)
        out.append(np.stack([members[a], members[b]], axis=1))
    return _finish(out)


def _regular_group(g: int, k: int, rng: np.random.Generator, max_rounds: int = 200) -> np.ndarray:
    """Random near-k-regular simple graph on g local nodes (configuration model + edge-swap repair).

    A dense graph (k > (g - 1) / 2) is the complement of a sparse one: near the complete
    graph the swaps rarely find a free pair, and pairs were lost.
    """
    if k >= g - 1:
        a, b = np.triu_indices(g, k=1)
        return np.stack([a, b], axis=1)
    if k <= 0 or g < 2:
        return np.zeros((0, 2), dtype=np.int64)
    if 2 * k > g - 1:
        sparse = _regular_group(g, g - 1 - k, rng, max_rounds)
        taken = np.zeros((g, g), dtype=bool)
        taken[sparse[:, 0], sparse[:, 1]] = True
        a, b = np.triu_indices(g, k=1)
        keep = ~taken[a, b]
        return np.stack([a[keep], b[keep]], axis=1)
    stubs = np.repeat(np.arange(g, dtype=np.int64), k)
    rng.shuffle(stubs)
    if len(stubs) % 2:
        stubs = stubs[:-1]  # k*g odd: one item ends with degree k-1
    edges = stubs.reshape(-1, 2)
    for _ in range(max_rounds):
        lo, hi = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
        key = lo * g + hi
        _, first = np.unique(key, return_index=True)
        bad = np.ones(len(edges), dtype=bool)
        bad[first] = False
        bad |= lo == hi
        bad_idx = np.flatnonzero(bad)
        if len(bad_idx) == 0:
            break
        # Swap each bad edge (a, b) with a random edge (c, d) -> (a, c), (b, d); keeps every degree.
        partners = rng.integers(0, len(edges), size=len(bad_idx))
        for e, f in zip(bad_idx, partners):
            if e == f:
                continue
            a, b = edges[e]
            c, d = edges[f]
            if rng.random() < 0.5:
                c, d = d, c
            edges[e] = (a, c)
            edges[f] = (b, d)
    lo, hi = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
    keep = lo != hi
    pairs = np.unique(np.stack([lo[keep], hi[keep]], axis=1), axis=0)
    return _top_up(pairs, g, k, rng)


def _top_up(pairs: np.ndarray, g: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Add pairs between items left below degree ``k`` by an unfinished repair (rare)."""
    degree = np.bincount(pairs.ravel(), minlength=g)
    if degree.sum() >= g * k - 1:
        return pairs
    taken = np.zeros((g, g), dtype=bool)
    taken[pairs[:, 0], pairs[:, 1]] = taken[pairs[:, 1], pairs[:, 0]] = True
    np.fill_diagonal(taken, True)
    added = []
    for a in rng.permutation(g):
        while degree[a] < k:
            free = np.flatnonzero(~taken[a] & (degree < k))
            if len(free) == 0:
                break
            b = int(rng.choice(free))
            taken[a, b] = taken[b, a] = True
            degree[a] += 1
            degree[b] += 1
            added.append((min(a, b), max(a, b)))
    if not added:
        return pairs
    return np.unique(np.concatenate([pairs, np.asarray(added, dtype=np.int64)]), axis=0)


def random_pairs(n_items: int, k: int, *, groups: Optional[Sequence] = None, seed: int = 0) -> np.ndarray:
    """A random balanced design with each item in about ``k`` pairs.

    Within each group a random simple graph with every degree ``k`` is drawn
    (configuration model with degree-preserving repair of self-loops and
    repeated pairs), so the design has ``k * n / 2`` pairs and is balanced.
    Groups with at most ``k + 1`` items get all their pairs. With ``k >= 3``
    the design is connected with high probability.

    Parameters
    ----------
    n_items : int
    k : int
        Comparisons per item (each pair counts once for both of its items).
    groups : array-like, shape (n_items,), optional
    seed : int
        The design is a deterministic function of (n_items, k, groups, seed).

    Returns
    -------
    numpy.ndarray, int64, shape (m, 2)

    Raises
    ------
    ValueError
        If ``k < 1``.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k={k!r} comparisons per item must be an integer >= 1")
    k = int(k)
    out = []
    for index, members in enumerate(_as_groups(n_items, groups)):
        rng = np.random.default_rng([int(seed), index, len(members), k])
        local = _regular_group(len(members), k, rng)
        out.append(members[local])
    return _finish(out)


def _laplacian_solver(n: int, pairs: np.ndarray, ridge: float):
    """A function solving ``(L + ridge * I) X = B`` column by column, ``L`` the Laplacian of ``pairs``.

    Jacobi-preconditioned conjugate gradients (``scipy.sparse.linalg.cg``),
    stopped at a relative residual of ``rtol`` or after ``max_iter`` steps.
    """
    try:
        import scipy.sparse as sp
        from scipy.sparse.linalg import cg
    except ImportError as exc:  # a numpy-only install
        raise ImportError(
            "the scalable greedy design (groups larger than exact_max) needs scipy: pip install scipy"
        ) from exc
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    diag = np.bincount(rows, minlength=n) + ridge
    adjacency = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    matrix = (sp.diags(diag) - adjacency).tocsr()
    jacobi = sp.diags(1.0 / diag)
    # scipy < 1.12 names the relative tolerance ``tol``; 1.14 removed that name
    tol_name = "rtol" if "rtol" in inspect.signature(cg).parameters else "tol"

    def solve(rhs: np.ndarray, rtol: float, max_iter: int) -> np.ndarray:
        out = np.empty_like(rhs)
        for c in range(rhs.shape[1]):
            out[:, c], _ = cg(matrix, rhs[:, c], atol=0.0, M=jacobi, maxiter=max_iter, **{tol_name: rtol})
        return out

    return solve


def _greedy_exact(g: int, budget: int, start: np.ndarray, ridge: float, rng: np.random.Generator) -> list:
    """Exact greedy D-optimal selection on g local nodes; returns the added local pairs."""
    laplacian = np.zeros((g, g))
    if len(start):
        np.add.at(laplacian, (start[:, 0], start[:, 0]), 1.0)
        np.add.at(laplacian, (start[:, 1], start[:, 1]), 1.0)
        np.add.at(laplacian, (start[:, 0], start[:, 1]), -1.0)
        np.add.at(laplacian, (start[:, 1], start[:, 0]), -1.0)
    cov = np.linalg.inv(laplacian + ridge * np.eye(g))
    taken = np.zeros((g, g), dtype=bool)
    np.fill_diagonal(taken, True)
    if len(start):
        taken[start[:, 0], start[:, 1]] = taken[start[:, 1], start[:, 0]] = True
    # A tiny fixed jitter breaks ties (all pairs are equal at the start) reproducibly.
    jitter = rng.random((g, g)) * 1e-9
    jitter = jitter + jitter.T
    chosen = []
    for _ in range(budget):
        d = np.diag(cov)
        resistance = d[:, None] + d[None, :] - 2.0 * cov + jitter
        resistance[taken] = -np.inf
        flat = int(np.argmax(resistance))
        i, j = divmod(flat, g)
        if not np.isfinite(resistance[i, j]):
            break
        taken[i, j] = taken[j, i] = True
        chosen.append((min(i, j), max(i, j)))
        u = cov[:, i] - cov[:, j]
        cov -= np.outer(u, u) / (1.0 + u[i] - u[j])
    return chosen


def _first_occurrence_matching(lo: np.ndarray, hi: np.ndarray, order: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """Candidates (visited in ``order``) whose two nodes appear there for the first time.

    A vectorised, conservative version of the greedy matching: every returned
    candidate is one the sequential greedy would also take.
    """
    lo, hi = lo[order], hi[order]
    ok = ~(blocked[lo] | blocked[hi])
    lo, hi, order = lo[ok], hi[ok], order[ok]
    seq = np.empty(2 * len(lo), dtype=np.int64)
    seq[0::2], seq[1::2] = lo, hi
    _, first = np.unique(seq, return_index=True)
    is_first = np.zeros(len(seq), dtype=bool)
    is_first[first] = True
    take = is_first[0::2] & is_first[1::2]
    return order[take]


def _greedy_approx(g: int, budget: int, start: np.ndarray, ridge: float, rng: np.random.Generator,
                   n_proj: int, n_candidates: int, round_fraction: float) -> list:
    """Scalable greedy: random-projection effective resistances, a matching of top pairs per round.

    Each round estimates every node's embedding ``Z`` with ``||Z_i - Z_j||^2`` close to
    the effective resistance between i and j (Spielman-Srivastava: a random ±1
    projection of the incidence matrix, then a few Laplacian solves by CG,
    :func:`scipy.sparse.linalg.cg`), scores
    random candidate pairs among the nodes still below the target degree, and adds
    the highest-scoring disjoint pairs (a matching, so no node gets two pairs on
    the same stale estimate).
    """
    pairs = np.unique(np.sort(start, axis=1), axis=0) if len(start) else np.zeros((0, 2), dtype=np.int64)
    existing_keys = np.sort(pairs[:, 0] * g + pairs[:, 1])
    deg = np.bincount(pairs.ravel(), minlength=g) if len(pairs) else np.zeros(g, dtype=np.int64)
    target = int(math.ceil(2.0 * (len(pairs) + budget) / g))
    chosen = []
    per_round = max(1, int(round_fraction * g))
    stalls = 0
    while len(chosen) < budget and stalls < 5:
        solve = _laplacian_solver(g, pairs, ridge)
        m = len(pairs)
        rhs = math.sqrt(ridge) * rng.choice([-1.0, 1.0], size=(g, n_proj))
        if m:
            signs = rng.choice([-1.0, 1.0], size=(m, n_proj))
            np.add.at(rhs, pairs[:, 0], signs)
            np.add.at(rhs, pairs[:, 1], -signs)
        # Loose on purpose: the projection's own error (about 1 / sqrt(n_proj)) is far larger.
        emb = solve(rhs / math.sqrt(n_proj), rtol=1e-2, max_iter=100)
        open_nodes = np.flatnonzero(deg < target)
        if len(open_nodes) < 2:
            target += 1
            continue
        left = np.repeat(open_nodes, n_candidates)
        right = open_nodes[rng.integers(0, len(open_nodes), size=len(left))]
        keep = left != right
        lo, hi = np.minimum(left[keep], right[keep]), np.maximum(left[keep], right[keep])
        keys = lo * g + hi
        fresh = ~np.isin(keys, existing_keys) if len(existing_keys) else np.ones(len(keys), bool)
        lo, hi = lo[fresh], hi[fresh]
        diff = emb[lo] - emb[hi]
        score = np.einsum("ij,ij->i", diff, diff)
        # Prefer the least-compared nodes, then the largest estimated resistance.
        order = np.lexsort((-score, deg[lo] + deg[hi]))
        want = min(per_round, budget - len(chosen))
        blocked = np.zeros(g, dtype=bool)
        taken = np.zeros(0, dtype=np.int64)
        for _ in range(6):  # a few vectorised passes approach the sequential greedy matching
            more = _first_occurrence_matching(lo, hi, order, blocked)[: want - len(taken)]
            if len(more) == 0:
                break
            taken = np.concatenate([taken, more])
            blocked[lo[more]] = blocked[hi[more]] = True
            if len(taken) >= want:
                break
        if len(taken) == 0:
            stalls += 1
            target += 1
            continue
        new = np.stack([lo[taken], hi[taken]], axis=1)
        existing_keys = np.sort(np.concatenate([existing_keys, new[:, 0] * g + new[:, 1]]))
        np.add.at(deg, new.ravel(), 1)
        pairs = np.concatenate([pairs, new], axis=0)
        chosen.extend(map(tuple, new.tolist()))
    return chosen


def greedy_pairs(
    n_items: int,
    k: Optional[float] = None,
    *,
    n_pairs: Optional[int] = None,
    groups: Optional[Sequence] = None,
    initial: Optional[np.ndarray] = None,
    seed: int = 0,
    ridge: float = 1e-3,
    exact_max: int = 400,
    n_proj: int = 16,
    n_candidates: int = 8,
    round_fraction: float = 0.25,
) -> np.ndarray:
    """Information-greedy design: add the pair that most reduces score uncertainty.

    Under the Gaussian product of experts every comparison adds ``(e_i - e_j)(e_i - e_j)^T``
    to the precision matrix ``L + ridge * I`` (``L`` the comparison graph's
    Laplacian), so the design can be planned before any judging. Each step
    adds the not-yet-chosen pair with the largest posterior variance of
    ``s_i - s_j`` (effective resistance), which maximises the gain in
    ``log det`` (the PoE paper's criterion). The first steps therefore build a
    spanning tree; later ones balance the graph.

    Parameters
    ----------
    n_items : int
    k : float, optional
        Budget as comparisons per item: ``round(k * n / 2)`` new pairs per group (on top of ``initial``).
    n_pairs : int, optional
        Budget as a total number of pairs (split over groups by group size).
        Give exactly one of ``k`` and ``n_pairs``.
    groups : array-like, shape (n_items,), optional
    initial : array, shape (m0, 2), optional
        Pairs already judged; the new pairs are chosen given them and returned with them.
    seed : int
        Breaks ties; the design is deterministic given the seed.
    ridge : float
        Prior precision lambda keeping ``L + lambda I`` invertible.
    exact_max : int
        Groups up to this size use the exact O(g^2)-per-step update; larger
        groups use the random-projection approximation.
    n_proj, n_candidates, round_fraction : approximation settings
        Projection dimension, random candidate partners per item per round,
        and pairs added per round as a fraction of the group size.

    Returns
    -------
    numpy.ndarray, int64, shape (m, 2)
    """
    if (k is None) == (n_pairs is None):
        raise ValueError("give exactly one of k (comparisons per item) and n_pairs (total pairs)")
    if k is not None and not k > 0:
        raise ValueError(f"k={k!r} comparisons per item must be > 0")
    if n_pairs is not None and n_pairs < 0:
        raise ValueError(f"n_pairs={n_pairs!r} must be >= 0")
    members_list = _as_groups(n_items, groups)
    start_all = np.zeros((0, 2), dtype=np.int64) if initial is None else np.asarray(initial, dtype=np.int64).reshape(-1, 2)
    if len(start_all) and (start_all.min() < 0 or start_all.max() >= n_items):
        raise ValueError(f"initial pairs must index items in [0, n_items={n_items})")
    local_of = np.empty(n_items, dtype=np.int64)
    group_of = np.empty(n_items, dtype=np.int64)
    for gi, members in enumerate(members_list):
        local_of[members] = np.arange(len(members))
        group_of[members] = gi
    out = [start_all]
    sizes = np.array([len(m) for m in members_list])
    for gi, members in enumerate(members_list):
        g = len(members)
        if g < 2:
            continue
        max_pairs = g * (g - 1) // 2
        if k is not None:
            budget = int(round(k * g / 2))
        else:
            budget = int(round(n_pairs * g / max(1, sizes.sum())))
        mask = (group_of[start_all[:, 0]] == gi) & (group_of[start_all[:, 1]] == gi) if len(start_all) else np.zeros(0, bool)
        start = local_of[start_all[mask]] if len(start_all) else np.zeros((0, 2), dtype=np.int64)
        start = np.unique(np.sort(start, axis=1), axis=0) if len(start) else start.reshape(0, 2)
        budget = max(0, min(budget, max_pairs - len(start)))
        if budget == 0:
            continue
        rng = np.random.default_rng([int(seed), gi, g])
        if g <= exact_max:
            chosen = _greedy_exact(g, budget, start, ridge, rng)
        else:
            chosen = _greedy_approx(g, budget, start, ridge, rng, n_proj, n_candidates, round_fraction)
        if len(chosen) < budget:
            warnings.warn(f"greedy design for group {gi} found {len(chosen)} of {budget} pairs", RuntimeWarning)
        if chosen:
            out.append(members[np.asarray(chosen, dtype=np.int64)])
    return _finish(out)


def plan_pairs(
    n_items: int,
    design: str = "random",
    *,
    k: Optional[float] = None,
    groups: Optional[Sequence] = None,
    seed: int = 0,
) -> np.ndarray:
    """Dispatch to a design by name: ``"all"``, ``"random"`` (needs ``k``) or ``"greedy"`` (needs ``k``)."""
    if design == "all":
        return all_pairs(n_items, groups)
    if design in ADAPTIVE_DESIGNS:
        raise ValueError(f"design={design!r} chooses its pairs between rounds of judging, so it has no plan before "
                         f"judging: use pycomp.active.active_rank (pycomp rank --design {design} --budget B)")
    if design not in DESIGNS:
        raise ValueError(f"design={design!r} is not one of {DESIGNS + ADAPTIVE_DESIGNS}")
    if k is None:
        raise ValueError(f"design={design!r} needs k, the number of comparisons per item")
    if design == "random":
        return random_pairs(n_items, k, groups=groups, seed=seed)
    return greedy_pairs(n_items, k, groups=groups, seed=seed)
