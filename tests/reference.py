"""Independent NumPy/SciPy reference for the pycomp solver core.

Everything here is written plainly and densely (no CSR, no iterative solvers)
so that it can be read against the objective and trusted as the oracle for the
compiled core. The benchmarks may import it as the "NumPy reference" baseline.

Objectives, for items ``0..n-1`` and comparisons ``k`` with ``(i_k, j_k, p_k, w_k)``:

PoE-BT::

    F(s) = -sum_k w_k [p_k log sig(s_i - s_j) + (1 - p_k) log sig(s_j - s_i)]
           - alpha * sum_i [log sig(s_i) + log sig(-s_i)]

PoE-Gaussian::

    G(s) = 1/2 sum_k w_k (s_i - s_j - (p_k - beta))^2 + alpha/2 ||s||^2

With ``alpha == 0`` the optimum is centred to mean 0 inside every connected
component (components are formed by comparisons with positive weight).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.special import expit

__all__ = [
    "Comparisons",
    "bt_objective",
    "bt_gradient",
    "bt_hessian",
    "bt_solve",
    "bt_se",
    "bt_se_local",
    "bt_mle_exists",
    "gaussian_objective",
    "gaussian_gradient",
    "gaussian_hessian",
    "gaussian_solve",
    "gaussian_se",
    "components",
    "same_partition",
    "centre_per_component",
    "win_rate",
    "average_probability",
    "random_comparisons",
    "fair_tol",
    "finite_difference_gradient",
    "finite_difference_hessian",
]


@dataclass
class Comparisons:
    """A set of pairwise comparisons.

    Attributes
    ----------
    i, j : ndarray of int64, shape (m,)
        Item indices of the two sides of each comparison.
    p : ndarray of float64, shape (m,)
        Probability that ``i`` beats ``j``.
    w : ndarray of float64, shape (m,)
        Non-negative weight of each comparison.
    n_items : int
        Number of items.
    """

    i: np.ndarray
    j: np.ndarray
    p: np.ndarray
    w: np.ndarray
    n_items: int

    @classmethod
    def make(cls, i, j, p=None, w=None, n_items=None) -> "Comparisons":
        """Build comparisons with the API's defaults (``p = 1``, ``w = 1``).

        Parameters
        ----------
        i, j : array_like of int, shape (m,)
            Item indices.
        p : array_like of float, shape (m,), optional
            Probability that ``i`` wins; default 1.
        w : array_like of float, shape (m,), optional
            Weights; default 1.
        n_items : int, optional
            Number of items; default ``max(i, j) + 1``.

        Returns
        -------
        Comparisons
        """
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        m = i.shape[0]
        p = np.ones(m) if p is None else np.asarray(p, dtype=np.float64)
        w = np.ones(m) if w is None else np.asarray(w, dtype=np.float64)
        if n_items is None:
            n_items = int(max(i.max(), j.max())) + 1
        return cls(i, j, p, w, int(n_items))

    def kwargs(self) -> dict:
        """Keyword arguments for ``pycomp.solve``.

        Returns
        -------
        dict
            ``i``, ``j``, ``p``, ``weights``, ``n_items``.
        """
        return dict(i=self.i, j=self.j, p=self.p, weights=self.w, n_items=self.n_items)


# --------------------------------------------------------------------------- #
# graph helpers
# --------------------------------------------------------------------------- #
def components(c: Comparisons) -> np.ndarray:
    """Connected-component label of every item.

    Only comparisons with positive weight connect items; an item without such a
    comparison is its own component.

    Parameters
    ----------
    c : Comparisons

    Returns
    -------
    ndarray of int64, shape (n_items,)
        Labels ``0..n_components-1``.
    """
    keep = c.w > 0
    n = c.n_items
    a = sparse.coo_matrix(
        (np.ones(int(keep.sum())), (c.i[keep], c.j[keep])), shape=(n, n)
    ).tocsr()
    _, labels = csgraph.connected_components(a, directed=False)
    return labels.astype(np.int64)


def same_partition(a, b) -> bool:
    """Whether two label arrays describe the same partition of the items.

    Parameters
    ----------
    a, b : array_like of int, shape (n,)

    Returns
    -------
    bool
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def centre_per_component(s: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Subtract the mean of ``s`` inside each component.

    Parameters
    ----------
    s : ndarray of float64, shape (n,)
    labels : ndarray of int, shape (n,)

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    s = np.array(s, dtype=np.float64)
    for lab in np.unique(labels):
        idx = labels == lab
        s[idx] -= s[idx].mean()
    return s


def _projector(labels: np.ndarray) -> np.ndarray:
    """Dense ``sum_c 1_c 1_c^T / |c|`` (the per-component mean projector)."""
    n = labels.shape[0]
    out = np.zeros((n, n))
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        out[np.ix_(idx, idx)] = 1.0 / idx.size
    return out


def _inverse(H: np.ndarray, labels=None) -> np.ndarray:
    """Inverse of ``H``, or its pseudo-inverse when ``labels`` is given.

    With ``labels`` the null space of ``H`` must be spanned by the component
    indicators (true for a Hessian of F with ``alpha = 0``, or a weighted
    Laplacian); then ``pinv(H) = (H + P)^-1 - P`` with ``P`` the per-component
    mean projector, which is much faster than an SVD.
    """
    if labels is None:
        return np.linalg.inv(H)
    P = _projector(labels)
    return np.linalg.inv(H + P) - P


def bt_mle_exists(c: Comparisons) -> bool:
    """Whether the un-regularised (``alpha = 0``) PoE-BT optimum exists.

    It exists iff every connected component is strongly connected in the
    directed graph with an arc ``u -> v`` whenever ``u`` has positive win mass
    over ``v`` (Ford's condition).

    Parameters
    ----------
    c : Comparisons

    Returns
    -------
    bool
    """
    n = c.n_items
    fwd = c.w * c.p > 0  # i beats j
    bwd = c.w * (1.0 - c.p) > 0  # j beats i
    src = np.concatenate([c.i[fwd], c.j[bwd]])
    dst = np.concatenate([c.j[fwd], c.i[bwd]])
    a = sparse.coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)).tocsr()
    n_strong, strong = csgraph.connected_components(a, directed=True, connection="strong")
    weak = components(c)
    return n_strong == np.unique(weak).size and same_partition(strong, weak)


# --------------------------------------------------------------------------- #
# PoE-BT
# --------------------------------------------------------------------------- #
def _log_sig(x):
    """Numerically stable ``log(sigmoid(x))``."""
    return -np.logaddexp(0.0, -x)


def bt_objective(s, c: Comparisons, alpha: float) -> float:
    """PoE-BT objective ``F(s)`` (negative log posterior, to be minimised).

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
        Scores.
    c : Comparisons
    alpha : float
        Strength of the logistic prior.

    Returns
    -------
    float
    """
    s = np.asarray(s, dtype=np.float64)
    d = s[c.i] - s[c.j]
    data = -np.sum(c.w * (c.p * _log_sig(d) + (1.0 - c.p) * _log_sig(-d)))
    prior = -alpha * np.sum(_log_sig(s) + _log_sig(-s))
    return float(data + prior)


def bt_gradient(s, c: Comparisons, alpha: float) -> np.ndarray:
    """Gradient of :func:`bt_objective`.

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
    c : Comparisons
    alpha : float

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    s = np.asarray(s, dtype=np.float64)
    d = s[c.i] - s[c.j]
    r = c.w * (expit(d) - c.p)  # dF/dd_k
    g = np.zeros(c.n_items)
    np.add.at(g, c.i, r)
    np.add.at(g, c.j, -r)
    g += alpha * (2.0 * expit(s) - 1.0)
    return g


def bt_hessian(s, c: Comparisons, alpha: float) -> np.ndarray:
    """Dense Hessian of :func:`bt_objective`.

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
    c : Comparisons
    alpha : float

    Returns
    -------
    ndarray of float64, shape (n_items, n_items)
    """
    s = np.asarray(s, dtype=np.float64)
    d = s[c.i] - s[c.j]
    q = expit(d)
    h = c.w * q * (1.0 - q)
    n = c.n_items
    H = np.zeros((n, n))
    np.add.at(H, (c.i, c.i), h)
    np.add.at(H, (c.j, c.j), h)
    np.add.at(H, (c.i, c.j), -h)
    np.add.at(H, (c.j, c.i), -h)
    e = expit(s)
    H[np.diag_indices(n)] += 2.0 * alpha * e * (1.0 - e)
    return H


def bt_solve(c: Comparisons, alpha: float, gtol: float = 1e-10, max_iter: int = 500):
    """Reference PoE-BT optimum by damped Newton with dense solves.

    With ``alpha == 0`` the Newton system is ``(H + P) step = -g`` where ``P`` is
    the per-component mean projector; starting from 0 every iterate stays
    centred in each component.

    Parameters
    ----------
    c : Comparisons
    alpha : float
    gtol : float
        Stop when ``||grad F||_inf <= gtol``.
    max_iter : int

    Returns
    -------
    ndarray of float64, shape (n_items,)

    Raises
    ------
    ValueError
        ``alpha == 0`` and the optimum does not exist (see :func:`bt_mle_exists`),
        or Newton did not reach ``gtol``.
    """
    if alpha == 0 and not bt_mle_exists(c):
        raise ValueError("reference: optimum does not exist with alpha = 0")
    labels = components(c)
    P = _projector(labels) if alpha == 0 else 0.0
    s = np.zeros(c.n_items)
    f = bt_objective(s, c, alpha)
    for _ in range(max_iter):
        g = bt_gradient(s, c, alpha)
        if np.max(np.abs(g), initial=0.0) <= gtol:
            return s
        H = bt_hessian(s, c, alpha)
        step = np.linalg.solve(H + P, -g)
        t = 1.0
        slack = 1e-13 * (1.0 + abs(f))  # rounding of F: near the optimum take full steps
        while True:
            s_new = s + t * step
            f_new = bt_objective(s_new, c, alpha)
            if f_new <= f + 1e-4 * t * float(g @ step) + slack or t < 1e-12:
                break
            t *= 0.5
        s, f = s_new, f_new
        if alpha == 0:
            s = centre_per_component(s, labels)
    g = bt_gradient(s, c, alpha)
    if np.max(np.abs(g), initial=0.0) <= gtol:
        return s
    raise ValueError(f"reference Newton did not converge: |g| = {np.max(np.abs(g))}")


def bt_se(s, c: Comparisons, alpha: float) -> np.ndarray:
    """Exact standard errors ``sqrt(diag(H^-1))`` (pseudo-inverse when ``alpha == 0``; centred per component
    when ``alpha > 0``).

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
        The optimum.
    c : Comparisons
    alpha : float

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    H = bt_hessian(s, c, alpha)
    labels = components(c)
    if alpha == 0:
        return np.sqrt(np.diag(_inverse(H, labels)))
    # with a prior: each score relative to its component's mean (items alone in their
    # component keep the prior's variance), the alpha -> 0 limit of the centred pseudo-inverse
    centre = np.eye(len(labels)) - _projector(labels) * (np.bincount(labels)[labels] > 1)[:, None]
    return np.sqrt(np.diag(centre @ np.linalg.inv(H) @ centre.T))


def bt_se_local(s, c: Comparisons, alpha: float) -> np.ndarray:
    """Local standard-error approximation of the spec.

    ``var_i = 1 / (H_ii - sum_{j neighbour of i} C_ij^2 / H_jj)`` where ``C_ij``
    is the total curvature between ``i`` and ``j`` (``C_ij = -H_ij``).

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
    c : Comparisons
    alpha : float

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    s = np.asarray(s, dtype=np.float64)
    d = s[c.i] - s[c.j]
    q = expit(d)
    h = c.w * q * (1.0 - q)
    n = c.n_items
    C = sparse.coo_matrix(
        (np.concatenate([h, h]), (np.concatenate([c.i, c.j]), np.concatenate([c.j, c.i]))),
        shape=(n, n),
    ).tocsr()  # duplicates are summed: total curvature per pair
    e = expit(s)
    diag = np.asarray(C.sum(axis=1)).ravel() + 2.0 * alpha * e * (1.0 - e)
    C2 = C.multiply(C)
    corr = C2 @ (1.0 / diag)
    return np.sqrt(1.0 / (diag - corr))


# --------------------------------------------------------------------------- #
# PoE-Gaussian
# --------------------------------------------------------------------------- #
def gaussian_objective(s, c: Comparisons, alpha: float, beta: float = 0.5) -> float:
    """PoE-Gaussian objective ``G(s)``.

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
    c : Comparisons
    alpha : float
    beta : float

    Returns
    -------
    float
    """
    s = np.asarray(s, dtype=np.float64)
    r = s[c.i] - s[c.j] - (c.p - beta)
    return float(0.5 * np.sum(c.w * r * r) + 0.5 * alpha * np.sum(s * s))


def gaussian_gradient(s, c: Comparisons, alpha: float, beta: float = 0.5) -> np.ndarray:
    """Gradient of :func:`gaussian_objective`.

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
    c : Comparisons
    alpha : float
    beta : float

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    s = np.asarray(s, dtype=np.float64)
    r = c.w * (s[c.i] - s[c.j] - (c.p - beta))
    g = np.zeros(c.n_items)
    np.add.at(g, c.i, r)
    np.add.at(g, c.j, -r)
    return g + alpha * s


def gaussian_hessian(c: Comparisons, alpha: float) -> np.ndarray:
    """Dense Hessian of :func:`gaussian_objective`: weighted Laplacian plus ``alpha I``.

    Parameters
    ----------
    c : Comparisons
    alpha : float

    Returns
    -------
    ndarray of float64, shape (n_items, n_items)
    """
    n = c.n_items
    H = np.zeros((n, n))
    np.add.at(H, (c.i, c.i), c.w)
    np.add.at(H, (c.j, c.j), c.w)
    np.add.at(H, (c.i, c.j), -c.w)
    np.add.at(H, (c.j, c.i), -c.w)
    H[np.diag_indices(n)] += alpha
    return H


def gaussian_solve(c: Comparisons, alpha: float, beta: float = 0.5) -> np.ndarray:
    """Reference PoE-Gaussian optimum by a dense solve (centred per component if ``alpha == 0``).

    Parameters
    ----------
    c : Comparisons
    alpha : float
    beta : float

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    H = gaussian_hessian(c, alpha)
    b = -gaussian_gradient(np.zeros(c.n_items), c, alpha, beta)
    if alpha == 0:
        labels = components(c)
        return centre_per_component(np.linalg.solve(H + _projector(labels), b), labels)
    return np.linalg.solve(H, b)


def gaussian_se(s, c: Comparisons, alpha: float, beta: float = 0.5):
    """Standard errors of PoE-Gaussian: ``sqrt(sigma^2 diag(H^-1))``.

    ``sigma^2 = sum_k w_k r_k^2 / max(m - n_free, 1)`` where ``m`` counts the
    comparisons with positive weight and ``n_free = n_items - n_components``
    (the parameters left once each component's level is fixed), whatever
    ``alpha``. (The issue leaves ``m`` and ``n_free`` open; this is the
    convention pycomp documents in ``pycomp/standard_errors.py``.) ``H`` is the
    weighted Laplacian plus ``alpha I``; its pseudo-inverse when ``alpha == 0``.

    Parameters
    ----------
    s : array_like of float, shape (n_items,)
    c : Comparisons
    alpha : float
    beta : float

    Returns
    -------
    se : ndarray of float64, shape (n_items,)
    diag_hinv : ndarray of float64, shape (n_items,)
        ``diag(H^-1)`` (or of the pseudo-inverse), so callers can check the
        shape of ``se`` independently of the ``sigma^2`` convention.
    """
    s = np.asarray(s, dtype=np.float64)
    H = gaussian_hessian(c, alpha)
    labels = components(c)
    if alpha == 0:
        diag = np.diag(_inverse(H, labels))
    else:  # relative to the component's mean, as bt_se
        centre = np.eye(len(labels)) - _projector(labels) * (np.bincount(labels)[labels] > 1)[:, None]
        diag = np.diag(centre @ np.linalg.inv(H) @ centre.T)
    n_free = c.n_items - np.unique(labels).size
    r = s[c.i] - s[c.j] - (c.p - beta)
    m = int(np.count_nonzero(c.w > 0))
    sigma2 = np.sum(c.w * r * r) / max(m - n_free, 1)
    return np.sqrt(sigma2 * diag), diag


# --------------------------------------------------------------------------- #
# baselines
# --------------------------------------------------------------------------- #
def win_rate(c: Comparisons) -> np.ndarray:
    """Weighted fraction of hard wins per item (NaN without comparisons).

    A comparison counts 1 for ``i`` if ``p > 0.5``, 0.5 if ``p == 0.5``, else 0,
    and the complement for ``j``.

    Parameters
    ----------
    c : Comparisons

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    num = np.zeros(c.n_items)
    den = np.zeros(c.n_items)
    for a, b, p, w in zip(c.i, c.j, c.p, c.w):
        hard = 1.0 if p > 0.5 else (0.5 if p == 0.5 else 0.0)
        num[a] += w * hard
        num[b] += w * (1.0 - hard)
        den[a] += w
        den[b] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return out


def average_probability(c: Comparisons) -> np.ndarray:
    """Weighted mean probability of winning per item (NaN without comparisons).

    Parameters
    ----------
    c : Comparisons

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    num = np.zeros(c.n_items)
    den = np.zeros(c.n_items)
    for a, b, p, w in zip(c.i, c.j, c.p, c.w):
        num[a] += w * p
        num[b] += w * (1.0 - p)
        den[a] += w
        den[b] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return out


# --------------------------------------------------------------------------- #
# data and checks
# --------------------------------------------------------------------------- #
def random_comparisons(
    rng: np.random.Generator,
    n_items: int,
    m: int,
    kind: str = "soft",
    weighted: bool = False,
    connected: bool = True,
    spread: float = 1.5,
) -> Comparisons:
    """Random comparisons drawn from a latent BT model.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_items : int
        At least 2.
    m : int
        Number of comparisons (a spanning path is added first when
        ``connected``, so the result has ``m + n_items - 1`` rows then).
    kind : {"soft", "hard", "ties", "mixed"}
        ``soft``: p = sig(true difference + noise); ``hard``: p in {0, 1}
        sampled from the model; ``ties``: all 0.5; ``mixed``: a mix of soft,
        hard and exact ties.
    weighted : bool
        Draw weights from Uniform(0.2, 3) instead of 1.
    connected : bool
        Prepend a random spanning path so the graph is connected.
    spread : float
        Standard deviation of the latent scores.

    Returns
    -------
    Comparisons
    """
    true = rng.normal(0.0, spread, n_items)
    i = rng.integers(0, n_items, m)
    j = rng.integers(0, n_items - 1, m)
    j = j + (j >= i)  # never i == j
    if connected:
        perm = rng.permutation(n_items)
        i = np.concatenate([perm[:-1], i])
        j = np.concatenate([perm[1:], j])
    m_all = i.size
    soft = expit(true[i] - true[j] + rng.normal(0.0, 0.5, m_all))
    if kind == "soft":
        p = soft
    elif kind == "hard":
        p = (rng.random(m_all) < soft).astype(np.float64)
    elif kind == "ties":
        p = np.full(m_all, 0.5)
    elif kind == "mixed":
        u = rng.random(m_all)
        p = np.where(u < 0.4, soft, np.where(u < 0.8, (rng.random(m_all) < soft) * 1.0, 0.5))
    else:
        raise ValueError(kind)
    w = rng.uniform(0.2, 3.0, m_all) if weighted else np.ones(m_all)
    return Comparisons(i.astype(np.int64), j.astype(np.int64), p.astype(np.float64), w, n_items)


def fair_tol(H: np.ndarray, atol: float, alpha: float) -> float:
    """Largest gradient tolerance that guarantees scores within ``atol`` of the optimum.

    Near the optimum ``|s - s*|_inf <= ||H^+||_inf |g|_inf``; this returns
    ``min(1e-8, 0.1 * atol / ||H^+||_inf)`` so a solver that stops at that
    tolerance is guaranteed (with a 10x margin) to be within ``atol``.

    Parameters
    ----------
    H : ndarray, shape (n, n)
        Hessian at the optimum.
    atol : float
    alpha : float
        With ``alpha == 0`` the pseudo-inverse is used.

    Returns
    -------
    float
    """
    inv = np.linalg.pinv(H, hermitian=True) if alpha == 0 else np.linalg.inv(H)
    norm = np.max(np.sum(np.abs(inv), axis=1))
    return float(min(1e-8, 0.1 * atol / max(norm, 1e-300)))


def finite_difference_gradient(f, x, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference gradient of a scalar function.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``.
    x : ndarray, shape (n,)
    h : float

    Returns
    -------
    ndarray, shape (n,)
    """
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def finite_difference_hessian(grad, x, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference Jacobian of a gradient function.

    Parameters
    ----------
    grad : callable
        ``grad(x) -> ndarray (n,)``.
    x : ndarray, shape (n,)
    h : float

    Returns
    -------
    ndarray, shape (n, n)
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    H = np.zeros((n, n))
    for k in range(n):
        e = np.zeros_like(x)
        e[k] = h
        H[:, k] = (grad(x + e) - grad(x - e)) / (2 * h)
    return H


def assert_close(actual, desired, atol: float, rtol: float = 0.0, what: str = "values") -> None:
    """Assert ``|actual - desired| <= atol + rtol |desired|`` and report the worst entry.

    Parameters
    ----------
    actual, desired : array_like
    atol, rtol : float
    what : str
        Name used in the failure message.

    Raises
    ------
    AssertionError
    """
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    assert a.shape == d.shape, f"{what}: shape {a.shape} != {d.shape}"
    err = np.abs(a - d)
    bound = atol + rtol * np.abs(d)
    bad = ~(err <= bound)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        worst = int(np.nanargmax(np.where(np.isnan(err), np.inf, err))) if err.size else -1
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{a.size} entries out of tolerance (atol={atol}, rtol={rtol}); "
            f"first at [{k}]: {a.flat[k]!r} vs {d.flat[k]!r}; "
            f"max abs err {np.nanmax(err):.3e} at [{worst}]"
        )
