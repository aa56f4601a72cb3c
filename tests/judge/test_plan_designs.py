"""Planning designs: all pairs, balanced random, groups, information-greedy (exact and scalable)."""
import numpy as np
import pytest

from pycomp.plan import all_pairs, degrees, greedy_pairs, plan_pairs, random_pairs


def _valid(pairs, n):
    assert pairs.dtype == np.int64 and pairs.ndim == 2 and pairs.shape[1] == 2
    assert np.all(pairs[:, 0] < pairs[:, 1]), "pairs are (i, j) with i < j, no self-pairs"
    assert pairs.min(initial=0) >= 0 and pairs.max(initial=0) < n
    assert len(np.unique(pairs, axis=0)) == len(pairs), "no repeated pair"


def _components(pairs, n):
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    return len({find(x) for x in range(n)})


def _logdet(pairs, n, ridge=1e-3):
    lap = np.zeros((n, n))
    for a, b in pairs:
        lap[a, a] += 1
        lap[b, b] += 1
        lap[a, b] -= 1
        lap[b, a] -= 1
    return np.linalg.slogdet(lap + ridge * np.eye(n))[1]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_all_pairs(n):
    pairs = all_pairs(n)
    _valid(pairs, n)
    assert len(pairs) == n * (n - 1) // 2


def test_all_pairs_within_groups_only():
    groups = np.array(["x", "y", "x", "z", "y", "x"])
    pairs = all_pairs(6, groups)
    _valid(pairs, 6)
    assert np.all(groups[pairs[:, 0]] == groups[pairs[:, 1]])
    assert len(pairs) == 3 + 1 + 0


@pytest.mark.parametrize("n,k", [(10, 2), (11, 3), (50, 4), (97, 5), (200, 8)])
def test_random_design_is_balanced(n, k):
    pairs = random_pairs(n, k, seed=3)
    _valid(pairs, n)
    deg = degrees(pairs, n)
    assert deg.max() == k
    assert np.sum(deg < k) <= 1 and deg.min() >= k - 1  # one item short only when k * n is odd
    assert len(pairs) == (k * n) // 2


def test_random_design_is_deterministic_given_the_seed():
    a = random_pairs(60, 4, seed=11)
    assert np.array_equal(a, random_pairs(60, 4, seed=11))
    assert not np.array_equal(a, random_pairs(60, 4, seed=12))


def test_random_design_with_k3_is_connected():
    assert all(_components(random_pairs(100, 3, seed=s), 100) == 1 for s in range(5))


def test_random_design_in_groups():
    groups = np.repeat(np.arange(10), 16)  # SummEval shape: 10 articles x 16 summaries
    rng = np.random.default_rng(0)
    groups = groups[rng.permutation(len(groups))]
    pairs = random_pairs(160, 4, groups=groups, seed=0)
    _valid(pairs, 160)
    assert np.all(groups[pairs[:, 0]] == groups[pairs[:, 1]])
    assert np.all(degrees(pairs, 160) == 4)
    # A group too small for k gets all of its pairs.
    small = random_pairs(5, 6, groups=[0, 0, 0, 1, 1])
    assert small.tolist() == [[0, 1], [0, 2], [1, 2], [3, 4]]


@pytest.mark.parametrize("g", [9, 16, 17])
def test_dense_random_design_in_groups_loses_no_pair(g):
    # Near the complete graph the configuration model's repair used to give up and drop pairs
    # (groups of 16 with k = 10..14 got 390-426 pairs instead of 400-560).
    groups = np.repeat(np.arange(5), g)
    for k in range(1, g - 1):
        pairs = random_pairs(5 * g, k, groups=groups, seed=3)
        _valid(pairs, 5 * g)
        deg = degrees(pairs, 5 * g)
        assert np.all(groups[pairs[:, 0]] == groups[pairs[:, 1]])
        for grp in range(5):
            d = deg[groups == grp]
            # every item has k comparisons; when g * k is odd one item has one more or one fewer
            assert np.sum(d != k) <= 1 and d.min() >= k - 1 and d.max() <= k + 1, (g, k, d)
            assert abs(int(d.sum()) - g * k) <= 1


def test_random_design_rejects_bad_k():
    with pytest.raises(ValueError, match="k=0"):
        random_pairs(10, 0)
    with pytest.raises(ValueError, match="one label per item"):
        random_pairs(10, 2, groups=[0, 1])


def test_greedy_first_builds_a_spanning_tree_then_balances():
    n = 16
    tree = greedy_pairs(n, n_pairs=n - 1)
    assert len(tree) == n - 1 and _components(tree, n) == 1
    pairs = greedy_pairs(n, 4, seed=0)
    _valid(pairs, n)
    deg = degrees(pairs, n)
    assert len(pairs) == 32 and deg.max() - deg.min() <= 2
    assert np.array_equal(pairs, greedy_pairs(n, 4, seed=0))


def test_greedy_is_more_informative_than_random():
    n, k = 40, 4
    greedy = greedy_pairs(n, k)
    rand = [random_pairs(n, k, seed=s) for s in range(5)]
    assert len(greedy) == len(rand[0])
    assert _logdet(greedy, n) > max(_logdet(r, n) for r in rand)


def test_greedy_extends_initial_pairs_and_respects_groups():
    groups = np.array([0] * 8 + [1] * 8)
    start = np.array([[0, 1], [8, 9]])
    pairs = greedy_pairs(16, 3, groups=groups, initial=start)
    _valid(pairs, 16)
    assert {(0, 1), (8, 9)} <= set(map(tuple, pairs.tolist()))
    assert np.all(groups[pairs[:, 0]] == groups[pairs[:, 1]])
    assert len(pairs) == 2 + 2 * 12  # the initial pairs plus round(3 * 8 / 2) new ones per group
    with pytest.raises(ValueError, match="exactly one"):
        greedy_pairs(10)


def test_greedy_approximation_scales_and_stays_informative():
    n, k = 1500, 4
    approx = greedy_pairs(n, k, exact_max=100, seed=1)  # forces the random-projection path
    _valid(approx, n)
    assert len(approx) == k * n // 2
    assert _components(approx, n) == 1
    deg = degrees(approx, n)
    assert deg.min() >= 1 and deg.mean() == pytest.approx(k)
    # Compared with a random 4-regular design: not worse in total effective resistance (A-optimality proxy).
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    def trace_cov(pairs):
        rows = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(n)])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(n)])
        d = degrees(pairs, n) + 1e-2
        vals = np.concatenate([-np.ones(2 * len(pairs)), d])
        lap = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))
        lu = spla.splu(lap)
        probe = np.random.default_rng(0).choice([-1.0, 1.0], size=(n, 64))
        return float(np.mean(np.sum(probe * lu.solve(probe), axis=0)))

    assert trace_cov(approx) <= 1.05 * trace_cov(random_pairs(n, k, seed=1))


def test_plan_pairs_dispatch():
    assert len(plan_pairs(6, "all")) == 15
    assert len(plan_pairs(6, "random", k=2)) == 6
    assert len(plan_pairs(6, "greedy", k=2)) == 6
    with pytest.raises(ValueError, match="needs k"):
        plan_pairs(6, "random")
    with pytest.raises(ValueError, match="design='best'"):
        plan_pairs(6, "best", k=2)
