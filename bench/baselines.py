"""Vectorised NumPy / SciPy baselines for the PoE-BT solver benchmark.

These are the solvers a competent NumPy user would write: every per-
comparison quantity is one vectorised expression over the comparison
arrays, and every scatter-add onto items is an ``np.bincount`` with
weights. They minimise exactly the objective pycomp's solvers minimise
(product-of-experts Bradley-Terry with the "virtual games" prior)::

    F(s) = - sum_k w_k [p_k log sig(s_i - s_j) + (1 - p_k) log sig(s_j - s_i)]
           - alpha * sum_i [log sig(s_i) + log sig(-s_i)]

i.e. each item plays ``alpha`` wins and ``alpha`` losses against a virtual
item of score 0. With ``d_k = s_i - s_j`` the gradient is::

    g_i = sum_{k: i first} w_k (sig(d_k) - p_k)
        - sum_{k: i second} w_k (sig(d_k) - p_k) + alpha (2 sig(s_i) - 1)

and the Hessian is the weighted graph Laplacian with edge weights
``w_k sig(d_k) sig(-d_k)`` plus the diagonal ``2 alpha sig(s_i) sig(-s_i)``.

Contents
--------
poe_bt_objective, poe_bt_grad
    The objective and **the** gradient used to judge every provider's
    accuracy (``||poe_bt_grad(scores)||_inf``).
l2_bt_grad
    Gradient of choix's ``opt_pairwise`` objective (L2 penalty instead of
    the virtual-games prior), to report choix against its own objective.
newton_pcg
    Damped Newton; Jacobi-preconditioned CG on the Hessian-vector product;
    inexact-Newton forcing; backtracking (Armijo) line search.
newman
    Newman's (2023) fixed-point iteration, a faster relative of Hunter's
    MM, extended to soft outcomes, weights and the virtual-games prior.
lbfgsb
    ``scipy.optimize.minimize(method="L-BFGS-B")`` on the same objective,
    as the arena leaderboards fit Bradley-Terry.

All solvers start from ``s = 0``, stop when ``||grad F||_inf <= tol`` and
return a :class:`BaselineResult`.

Conventions: ``i``, ``j`` are int arrays of shape (m,) with values in
``[0, n_items)``; ``p`` is the probability that ``i`` beats ``j`` (float,
shape (m,)), or ``None`` for hard outcomes where ``i`` is the winner
(``p = 1``); ``weights`` is None (all 1) or a float array of shape (m,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

__all__ = [
    "BaselineResult",
    "poe_bt_objective",
    "poe_bt_grad",
    "l2_bt_grad",
    "newton_pcg",
    "newman",
    "lbfgsb",
]


@dataclass
class BaselineResult:
    """Result of a baseline solver.

    Attributes
    ----------
    scores : ndarray of float64, shape (n_items,)
        Final scores.
    n_iter : int
        Outer iterations (Newton steps, fixed-point sweeps, L-BFGS steps).
    converged : bool
        Whether ``grad_norm <= tol`` was reached.
    grad_norm : float
        ``||grad F(scores)||_inf`` as computed by the solver itself.
    objective : float
        ``F(scores)``.
    method : str
        Solver name.
    n_inner : int
        Inner work: CG iterations (Newton-PCG), function evaluations
        (L-BFGS-B), equal to ``n_iter`` for Newman.
    message : str
        Why the solver stopped.
    """

    scores: np.ndarray
    n_iter: int
    converged: bool
    grad_norm: float
    objective: float
    method: str
    n_inner: int = 0
    message: str = ""


# --------------------------------------------------------------------------
# objective and gradient
# --------------------------------------------------------------------------


def _n_items(s: np.ndarray, n_items: int | None) -> int:
    return int(s.shape[0]) if n_items is None else int(n_items)


class _Incidence:
    """The signed incidence matrix ``B`` (m x n: +1 at ``i_k``, -1 at ``j_k``) in SciPy CSR.

    ``B @ s`` gives every difference ``s_i - s_j`` and ``B.T @ r`` scatters
    per-comparison terms back to items: one compiled sparse product each, in
    place of NumPy fancy indexing and ``np.bincount``.
    """

    def __init__(self, i: np.ndarray, j: np.ndarray, n: int):
        import scipy.sparse as sp  # noqa: PLC0415

        m = i.shape[0]
        rows = np.concatenate([np.arange(m), np.arange(m)])
        cols = np.concatenate([i, j])
        vals = np.concatenate([np.ones(m), -np.ones(m)])
        self.B = sp.csr_matrix((vals, (rows, cols)), shape=(m, n))
        self.BT = self.B.T.tocsr()
        self.absBT = abs(self.BT)

    def diff(self, s: np.ndarray) -> np.ndarray:
        return self.B @ s

    def scatter(self, r: np.ndarray) -> np.ndarray:
        return self.BT @ r

    def degree(self, h: np.ndarray) -> np.ndarray:
        return self.absBT @ h


def _fg(
    s: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    p: np.ndarray | None,
    w: np.ndarray | None,
    alpha: float,
    need_f: bool = True,
    ops: _Incidence | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Objective, gradient and ``sig(d)`` in one pass over the comparisons."""
    n = s.shape[0]
    d = s[i] - s[j] if ops is None else ops.diff(s)
    sig = expit(d)
    r = sig - (1.0 if p is None else p)
    if w is not None:
        r *= w
    g = np.bincount(i, r, n) - np.bincount(j, r, n) if ops is None else ops.scatter(r)
    ss = expit(s)
    g += alpha * (2.0 * ss - 1.0)
    f = np.nan
    if need_f:
        # -[p log sig(d) + (1-p) log sig(-d)] = -log sig(d) + (1-p) d
        term = log_expit(d)
        if p is None:
            np.negative(term, out=term)
        else:
            term = (1.0 - p) * d - term
        if w is not None:
            term *= w
        ls = log_expit(s)
        # log sig(-s) = log sig(s) - s
        f = float(term.sum()) - alpha * float(np.sum(2.0 * ls - s))
    return f, g, sig


def poe_bt_objective(
    scores: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    p: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    alpha: float = 1.0,
) -> float:
    """PoE-BT negative log-posterior ``F(scores)``.

    Parameters
    ----------
    scores : ndarray of float64, shape (n_items,)
    i, j : ndarray of int, shape (m,)
        First and second item of each comparison.
    p : ndarray of float64, shape (m,), optional
        Probability that ``i`` beats ``j``; ``None`` means ``i`` won.
    weights : ndarray of float64, shape (m,), optional
        Per-comparison weights (default 1).
    alpha : float, default 1.0
        Virtual-games prior strength.

    Returns
    -------
    float
    """
    s = np.asarray(scores, dtype=np.float64)
    return _fg(s, i, j, p, weights, alpha)[0]


def poe_bt_grad(
    scores: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    p: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    alpha: float = 1.0,
) -> np.ndarray:
    """Gradient of the PoE-BT objective; the benchmark's accuracy yardstick.

    Every provider's returned scores are passed through this one function,
    and ``np.abs(grad).max()`` is reported as its achieved accuracy.

    Parameters
    ----------
    scores : ndarray of float64, shape (n_items,)
    i, j : ndarray of int, shape (m,)
    p : ndarray of float64, shape (m,), optional
        ``None`` means ``i`` won every comparison.
    weights : ndarray of float64, shape (m,), optional
    alpha : float, default 1.0

    Returns
    -------
    ndarray of float64, shape (n_items,)

    Examples
    --------
    >>> i, j = np.array([0, 1]), np.array([1, 2])
    >>> g = poe_bt_grad(np.zeros(3), i, j, alpha=1.0)
    >>> g.tolist()
    [-0.5, 0.0, 0.5]
    """
    s = np.asarray(scores, dtype=np.float64)
    return _fg(s, i, j, p, weights, alpha, need_f=False)[1]


def l2_bt_grad(scores: np.ndarray, winners: np.ndarray, losers: np.ndarray, penalty: float) -> np.ndarray:
    """Gradient of choix's ``opt_pairwise`` objective (hard outcomes).

    choix minimises ``sum_k log(1 + exp(-(s_w - s_l))) + penalty * ||s||^2``
    (``choix.opt.PairwiseFcts``), an L2 penalty instead of the virtual-
    games prior. Used only to report choix against its own objective.

    Parameters
    ----------
    scores : ndarray of float64, shape (n_items,)
    winners, losers : ndarray of int, shape (m,)
    penalty : float
        choix's ``alpha``.

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[0]
    z = expit(-(s[winners] - s[losers]))
    return 2.0 * penalty * s - np.bincount(winners, z, n) + np.bincount(losers, z, n)


# --------------------------------------------------------------------------
# Newton with Jacobi-preconditioned CG
# --------------------------------------------------------------------------


def _pcg(hvp, b: np.ndarray, inv_diag: np.ndarray, rtol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Solve ``H x = b`` by Jacobi-preconditioned CG from ``x = 0``.

    Stops when ``||r||_2 <= rtol * ||b||_2`` or after ``max_iter`` steps.
    """
    x = np.zeros_like(b)
    r = b.copy()
    z = inv_diag * r
    q = z.copy()
    rz = float(r @ z)
    stop = rtol * float(np.linalg.norm(b))
    k = 0
    while k < max_iter and float(np.linalg.norm(r)) > stop:
        hq = hvp(q)
        step = rz / float(q @ hq)
        x += step * q
        r -= step * hq
        z = inv_diag * r
        rz_new = float(r @ z)
        q *= rz_new / rz
        q += z
        rz = rz_new
        k += 1
    return x, k


def newton_pcg(
    i: np.ndarray,
    j: np.ndarray,
    p: np.ndarray | None = None,
    *,
    weights: np.ndarray | None = None,
    n_items: int | None = None,
    alpha: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 100,
    max_cg: int = 200,
    sparse: bool = False,
) -> BaselineResult:
    """Minimise the PoE-BT objective by Newton's method with a PCG inner solve.

    Each Newton step solves ``H dx = -g`` approximately by conjugate
    gradients preconditioned with ``diag(H)`` (Jacobi), to a relative
    residual ``eta = min(0.5, sqrt(||g||_inf))`` (inexact Newton: loose
    solves far from the optimum, superlinear convergence near it). The
    Hessian is never formed: ``H v = B^T (h * (B v)) + D_prior v`` with
    ``B`` the signed incidence matrix, applied as a gather and two
    ``np.bincount`` scatter-adds. A backtracking line search enforces the
    Armijo condition; once ``F`` stops changing beyond rounding error, a
    step is also accepted when it lowers ``||g||_2``.

    Parameters
    ----------
    i, j : ndarray of int, shape (m,)
        First and second item of each comparison.
    p : ndarray of float64, shape (m,), optional
        Probability that ``i`` beats ``j``; ``None`` means ``i`` won.
    weights : ndarray of float64, shape (m,), optional
    n_items : int, optional
        Default ``max(i.max(), j.max()) + 1``.
    alpha : float, default 1.0
        Virtual-games prior strength (must be > 0 for a unique optimum).
    tol : float, default 1e-8
        Stop when ``||grad F||_inf <= tol``.
    max_iter : int, default 100
        Maximum Newton steps.
    max_cg : int, default 200
        Maximum CG iterations per Newton step.
    sparse : bool, default False
        Apply the incidence matrix as a SciPy sparse matrix built once
        (:class:`_Incidence`) instead of fancy indexing and ``np.bincount``.

    Returns
    -------
    BaselineResult
        ``n_inner`` is the total number of CG iterations
        (Hessian-vector products).
    """
    n = int(max(i.max(), j.max()) + 1) if n_items is None else int(n_items)
    s = np.zeros(n)
    ops = _Incidence(i, j, n) if sparse else None
    f, g, sig = _fg(s, i, j, p, weights, alpha, ops=ops)
    n_cg = 0
    msg = "max_iter reached"
    it = 0
    for it in range(max_iter + 1):
        gmax = float(np.abs(g).max())
        if gmax <= tol:
            msg = "converged"
            break
        if it == max_iter:
            break
        h = sig * (1.0 - sig)
        if weights is not None:
            h *= weights
        ss = expit(s)
        d_prior = 2.0 * alpha * ss * (1.0 - ss)
        diag = (np.bincount(i, h, n) + np.bincount(j, h, n) if ops is None else ops.degree(h)) + d_prior
        inv_diag = 1.0 / diag

        def hvp(v: np.ndarray, h=h, d_prior=d_prior) -> np.ndarray:
            if ops is not None:
                return ops.scatter(h * ops.diff(v)) + d_prior * v
            t = h * (v[i] - v[j])
            return np.bincount(i, t, n) - np.bincount(j, t, n) + d_prior * v

        eta = min(0.5, np.sqrt(gmax))
        dx, k = _pcg(hvp, -g, inv_diag, eta, max_cg)
        n_cg += k
        gd = float(g @ dx)
        gnorm2 = float(np.linalg.norm(g))
        t = 1.0
        while True:
            s_new = s + t * dx
            f_new, g_new, sig_new = _fg(s_new, i, j, p, weights, alpha, ops=ops)
            if f_new <= f + 1e-4 * t * gd:
                break
            flat = abs(f_new - f) <= 64 * np.finfo(float).eps * max(abs(f), 1.0)
            if flat and float(np.linalg.norm(g_new)) < gnorm2:
                break
            t *= 0.5
            if t < 1e-12:
                msg = "line search failed"
                break
        if msg == "line search failed":
            break
        s, f, g, sig = s_new, f_new, g_new, sig_new
    return BaselineResult(
        scores=s,
        n_iter=it,
        converged=msg == "converged",
        grad_norm=float(np.abs(g).max()),
        objective=f,
        method="newton-pcg",
        n_inner=n_cg,
        message=msg,
    )


# --------------------------------------------------------------------------
# Newman's fixed-point iteration
# --------------------------------------------------------------------------


def newman(
    i: np.ndarray,
    j: np.ndarray,
    p: np.ndarray | None = None,
    *,
    weights: np.ndarray | None = None,
    n_items: int | None = None,
    alpha: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> BaselineResult:
    """Minimise the PoE-BT objective by Newman's fixed-point iteration.

    Newman (2023, "Efficient computation of rankings from pairwise
    comparisons", JMLR 24) iterates, with ``pi_i = exp(s_i)`` and
    ``a_ij`` the (fractional) number of wins of ``i`` over ``j``::

        pi_i <- sum_j a_ij pi_j / (pi_i + pi_j)  /  sum_j a_ji / (pi_i + pi_j)

    In scores, ``s_i <- s_i + log(num_i) - log(den_i)`` with
    ``num_i = sum_j a_ij sig(s_j - s_i)`` and ``den_i = sum_j a_ji
    sig(s_i - s_j)``. A comparison contributes ``a_ij = w p``,
    ``a_ji = w (1 - p)``; the prior adds ``alpha`` wins and losses against
    a virtual item of score 0. Since ``grad F = den - num`` the stopping
    test costs nothing extra. All items are updated simultaneously, one
    pass over the comparisons per iteration.

    Parameters
    ----------
    i, j : ndarray of int, shape (m,)
    p : ndarray of float64, shape (m,), optional
        ``None`` means ``i`` won.
    weights : ndarray of float64, shape (m,), optional
    n_items : int, optional
    alpha : float, default 1.0
        Must be > 0 (keeps every ``num_i`` and ``den_i`` positive).
    tol : float, default 1e-8
        Stop when ``||grad F||_inf <= tol``.
    max_iter : int, default 10000

    Returns
    -------
    BaselineResult
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0 for the Newman iteration, got {alpha}")
    n = int(max(i.max(), j.max()) + 1) if n_items is None else int(n_items)
    s = np.zeros(n)
    msg = "max_iter reached"
    it = 0
    gmax = np.inf
    for it in range(max_iter + 1):
        sig = expit(s[i] - s[j])
        q = 1.0 - sig  # sig(s_j - s_i)
        ss = expit(s)
        if p is None:
            a = q if weights is None else weights * q  # i's wins, weighted
            num = np.bincount(i, a, n)
            den = np.bincount(j, a, n)
        else:
            a = p * q  # i beat j, weighted by sig(s_j - s_i)
            b = (1.0 - p) * sig  # j beat i, weighted by sig(s_i - s_j)
            if weights is not None:
                a *= weights
                b *= weights
            num = np.bincount(i, a, n) + np.bincount(j, b, n)
            den = np.bincount(i, b, n) + np.bincount(j, a, n)
        num += alpha * (1.0 - ss)
        den += alpha * ss
        gmax = float(np.abs(den - num).max())
        if gmax <= tol:
            msg = "converged"
            break
        if it == max_iter:
            break
        s += np.log(num) - np.log(den)
    f = poe_bt_objective(s, i, j, p, weights, alpha)
    return BaselineResult(
        scores=s,
        n_iter=it,
        converged=msg == "converged",
        grad_norm=gmax,
        objective=f,
        method="newman",
        n_inner=it,
        message=msg,
    )


# --------------------------------------------------------------------------
# SciPy L-BFGS-B
# --------------------------------------------------------------------------


def lbfgsb(
    i: np.ndarray,
    j: np.ndarray,
    p: np.ndarray | None = None,
    *,
    weights: np.ndarray | None = None,
    n_items: int | None = None,
    alpha: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 15_000,
) -> BaselineResult:
    """Minimise the PoE-BT objective with SciPy's L-BFGS-B.

    ``gtol=tol`` is L-BFGS-B's bound on the infinity norm of the (here
    unbounded, so plain) gradient, the same criterion as the other
    solvers; ``ftol=0`` disables the stop on a small relative decrease of
    ``F``, so the solver runs until the gradient test passes or its line
    search can make no more progress in floating point.

    Parameters
    ----------
    i, j : ndarray of int, shape (m,)
    p : ndarray of float64, shape (m,), optional
    weights : ndarray of float64, shape (m,), optional
    n_items : int, optional
    alpha : float, default 1.0
    tol : float, default 1e-8
    max_iter : int, default 15000

    Returns
    -------
    BaselineResult
        ``n_inner`` is the number of objective/gradient evaluations.
    """

    n = int(max(i.max(), j.max()) + 1) if n_items is None else int(n_items)

    def fun(s: np.ndarray) -> tuple[float, np.ndarray]:
        f, g, _ = _fg(s, i, j, p, weights, alpha)
        return f, g

    res = minimize(
        fun,
        np.zeros(n),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": tol, "ftol": 0.0, "maxiter": max_iter, "maxfun": 2 * max_iter},
    )
    f, g, _ = _fg(res.x, i, j, p, weights, alpha)
    gmax = float(np.abs(g).max())
    return BaselineResult(
        scores=res.x,
        n_iter=int(res.nit),
        converged=gmax <= tol,
        grad_norm=gmax,
        objective=f,
        method="lbfgsb",
        n_inner=int(res.nfev),
        message=str(res.message),
    )
