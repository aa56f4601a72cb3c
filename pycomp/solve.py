"""``pycomp.solve``: scores from pairwise comparisons with the PoE solvers."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from pycomp import _devices
from pycomp._native import core
from pycomp import _validate as check
from pycomp import dispersion as _dispersion
from pycomp import uncertainty
from pycomp.exceptions import ConvergenceWarning, GraphWarning
from pycomp.standard_errors import hessian_parts, standard_errors

MODELS = ("bt", "gaussian")
METHODS = {"bt": ("auto", "newton", "mm", "newman"), "gaussian": ("auto", "cg")}
DEVICES = ("auto", "cpu", "cuda", "thrust")
SE_METHODS = ("auto", "exact", "local", "sandwich")
DEFAULT_MAX_ITER = {"newton": 100, "mm": 10000, "newman": 10000, "cg": 10000}
_INT_MAX = 2**31 - 1


@dataclass
class Solution:
    """Scores fitted by :func:`pycomp.solve`.

    Attributes
    ----------
    scores : ndarray of float64, shape (n_items,)
        The optimum of the objective (centred per component when ``alpha = 0``).
    se : ndarray of float64, shape (n_items,) or None
        Standard errors, sqrt(diag(H^-1)), when ``return_se`` was set.
    n_iter : int
        Outer iterations: Newton steps, fixed-point sweeps or CG steps.
    converged : bool
        Whether ``grad_norm <= tol``.
    grad_norm : float
        Infinity norm of the gradient of the objective at ``scores``.
    method : str
        The method that ran ("newton", "mm", "newman" or "cg").
    device : str
        "cpu", "cuda" or "thrust".
    n_components : int
        Connected components of the comparison graph (isolated items count).
    objective : float
        The objective F at ``scores``, computed on first access (one pass over the
        comparisons, which the solve itself skips) from the arrays given to
        :func:`solve`: read it before modifying those arrays in place.
    labels : ndarray of int32, shape (n_items,)
        Component of each item, numbered in order of each component's first item.
    se_method : str or None
        "exact", "local" or "exact+local" (Hessian), "sandwich" (dense),
        "sandwich-local" or "sandwich+sandwich-local" (see :mod:`pycomp.standard_errors`).
    model : str
        "bt" or "gaussian".
    n_inner : int
        Inner iterations (CG steps inside Newton), summed.
    prior_shift : ndarray of float64, shape (n_items,) or None
        With ``alpha > 0`` and a bootstrap or sandwich standard errors: about how far the
        prior moved each score toward 0 (one Newton step, :func:`pycomp.uncertainty.prior_shift`).
    dispersion : float or None
        With ``solve(..., dispersion=...)``: ``phi``, the judgements' variance in units of
        a coin flip's (:mod:`pycomp.dispersion`); the scores are then the optimum at
        ``alpha * phi`` and the Hessian standard errors include ``sqrt(phi)``.
    dispersion_df : int or None
        The residual degrees of freedom ``phi`` was estimated with (None when given).
    """

    scores: np.ndarray
    se: Optional[np.ndarray]
    n_iter: int
    converged: bool
    grad_norm: float
    method: str
    device: str
    n_components: int
    labels: np.ndarray = field(repr=False)
    se_method: Optional[str] = None
    model: str = "bt"
    n_inner: int = 0
    _objective: Optional[float] = field(default=None, repr=False, compare=False)
    _objective_of: Optional[Callable[[np.ndarray], float]] = field(default=None, repr=False, compare=False)
    replicates: Optional[np.ndarray] = field(default=None, repr=False)
    replicates_converged: Optional[np.ndarray] = field(default=None, repr=False)
    prior_shift: Optional[np.ndarray] = field(default=None, repr=False)
    dispersion: Optional[float] = None
    dispersion_df: Optional[int] = None
    _ranks: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def ranks(self) -> np.ndarray:
        """Rank of each item by score, 1 = best (tied items share the best rank of the tie)."""
        return uncertainty.ranks(self.scores)

    @property
    def replicate_ranks(self) -> np.ndarray:
        """Ranks (1 = best) of the items in each bootstrap replicate, shape (B, n_items)."""
        return self._replicate_ranks("replicate_ranks")

    def _replicate_ranks(self, what: str) -> np.ndarray:
        if self._ranks is None:
            self._ranks = uncertainty.ranks(self._require_replicates(what))
        return self._ranks

    def interval(self, level: float = 0.9) -> tuple:
        """(low, high) score arrays: a ``level`` interval for each item's score.

        With bootstrap replicates (``solve(..., bootstrap=B)``) the percentile
        interval of the replicates; otherwise the normal interval
        ``scores -+ z se`` from ``return_se=True`` (Hessian or sandwich, see ``se_method``).
        """
        level = uncertainty.check_level(level)
        if self.replicates is not None:
            return uncertainty.percentile_interval(self.replicates, level)
        if self.se is None:
            raise ValueError("no interval without bootstrap replicates or standard errors: "
                             "call pycomp.solve(..., bootstrap=B) or solve(..., return_se=True)")
        from statistics import NormalDist

        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        return self.scores - z * self.se, self.scores + z * self.se

    def rank_interval(self, level: float = 0.9) -> tuple:
        """(best, worst) rank arrays (rank 1 = best): quantiles of the bootstrap replicates' ranks."""
        level = uncertainty.check_level(level)
        return uncertainty.rank_interval(self._replicate_ranks("rank_interval"), level)

    @property
    def p_best(self) -> np.ndarray:
        """P(item is ranked first) over the bootstrap replicates."""
        return uncertainty.p_top(self._replicate_ranks("p_best"), 1)

    def p_top(self, k: int) -> np.ndarray:
        """P(item is in the top k) over the bootstrap replicates, 1 <= k <= n_items."""
        return uncertainty.p_top(self._replicate_ranks("p_top"), k)

    def _require_replicates(self, what: str) -> np.ndarray:
        if self.replicates is None:
            raise ValueError(f"{what} needs bootstrap replicates: call pycomp.solve(..., bootstrap=B), e.g. B = 1000")
        return self.replicates

    @property
    def n_items(self) -> int:
        """Number of items scored."""
        return int(self.scores.shape[0])

    @property
    def objective(self) -> float:
        """The objective F at ``scores`` (computed once, on first access)."""
        if self._objective is None:
            if self._objective_of is None:
                raise AttributeError("this Solution was built without its comparisons: no objective to compute")
            self._objective = float(self._objective_of(self.scores))
            self._objective_of = None  # drop the references to the comparison arrays
        return self._objective


def solve(
    i: Any,
    j: Any = None,
    p: Any = None,
    *,
    weights: Any = None,
    n_items: Optional[int] = None,
    model: str = "bt",
    method: str = "auto",
    alpha: float = 1.0,
    beta: float = 0.5,
    tol: float = 1e-8,
    max_iter: Optional[int] = None,
    device: str = "auto",
    return_se: bool = False,
    se_method: str = "auto",
    n_threads: Optional[int] = None,
    bootstrap: Optional[int] = None,
    seed: Optional[int] = None,
    cluster: Any = None,
    collapse: Optional[bool] = None,
    dispersion: Any = None,
) -> Solution:
    """Fit scores to pairwise comparisons with a product-of-experts model.

    PoE-BT (``model="bt"``) minimises
    ``F(s) = -sum_k w_k [p_k log sig(s_i - s_j) + (1 - p_k) log sig(s_j - s_i)]
    - alpha sum_a [log sig(s_a) + log sig(-s_a)]``: each comparison is an expert on
    ``s_i - s_j`` and the prior is alpha virtual wins and losses of every item
    against a virtual item of score 0 (Newman 2023). PoE-Gaussian
    (``model="gaussian"``) minimises ``1/2 sum_k w_k (s_i - s_j - (p_k - beta))^2
    + alpha/2 ||s||^2``. With ``alpha = 0`` scores are centred to mean 0 in each
    connected component.

    Parameters
    ----------
    i, j : array_like of int, shape (m,)
        Item indices of each comparison. With ``j=None``, ``i`` may be an (m, 2)
        array of (winner, loser) rows.
    p : array_like of float, shape (m,), optional
        Probability that ``i`` beats ``j`` (hard wins 1, ties 0.5). None: ``i`` won.
    weights : array_like of float, shape (m,), optional
        Non-negative weight of each comparison (default 1).
    n_items : int, optional
        Number of items (default: largest index + 1). Items that appear in no
        comparison get score 0 (their prior mode).
    model : {"bt", "gaussian"}
    method : str
        PoE-BT: "newton" (Newton with preconditioned CG, the default for "auto"),
        "mm" (Hunter's MM) or "newman" (Newman's fixed point). PoE-Gaussian: "cg".
    alpha : float
        Prior strength, >= 0. With 0 and hard outcomes the optimum may not exist
        (an item that won all its comparisons): a ValueError says which items.
    beta : float
        PoE-Gaussian offset: the expected score difference is ``p - beta``.
    tol : float
        Stop when the infinity norm of the gradient of the objective is <= tol.
    max_iter : int, optional
        Outer iteration limit (default 100 Newton steps, 10000 sweeps or CG steps).
    device : {"auto", "cpu", "cuda", "thrust"}
        Where to solve. "cuda": the GPU (numpy arrays are copied there once; CUDA
        arrays such as torch CUDA tensors are used in place, and are also accepted by
        "auto"). "auto": the GPU when one works here and there are at least
        ``pycomp._devices.AUTO_CUDA_MIN_COMPARISONS`` (1M) comparisons, else the CPU.
        "thrust": the CUDA backend's source run on the CPU by Thrust's OpenMP system,
        a test path, never chosen by "auto" (see :mod:`pycomp._devices`).
    return_se : bool
        Compute standard errors sqrt(diag(H^-1)) (see :mod:`pycomp.standard_errors`).
    se_method : {"auto", "exact", "local", "sandwich"}
        How ``se`` is computed: sqrt(diag(H^-1)) exactly or by the local
        approximation (see :mod:`pycomp.standard_errors`), or "sandwich",
        sqrt(diag(H^-1 M H^-1)) with M the sum of the comparisons' gradient outer
        products (cluster-robust with ``cluster``): dense up to 4000 items, above
        that dense per component of up to 2000 items and a local approximation for
        larger ones (``se_method`` of the solution then says "sandwich-local";
        ``cluster`` is refused there). Which is right when: see
        :mod:`pycomp.uncertainty`.
    n_threads : int, optional
        OpenMP threads, >= 0 (default or 0: all for large problems, 1 below 20,000
        comparisons). More than the processors available are not started (the
        results do not depend on the thread count).
    bootstrap : int, optional
        B >= 1 bootstrap replicates: the comparisons (or the clusters) are drawn with
        replacement B times and each replicate re-solved, warm-started from the
        solution (``csrc/cpu/bootstrap.cpp``). Gives ``replicates`` and
        :meth:`Solution.interval`, :meth:`Solution.rank_interval`,
        :attr:`Solution.p_best`, :meth:`Solution.p_top`.
    seed : int, optional
        Seed of the bootstrap (default 0); each replicate has its own random stream, so
        results do not depend on the thread count.
    cluster : array_like, shape (m,), optional
        A label per comparison (a user, a judge prompt, a pair): the bootstrap draws
        whole clusters and the sandwich is cluster-robust.
    collapse : bool, optional
        Collapse repeated pairs into one weighted comparison before solving (exact: see
        :mod:`pycomp.collapse`). Default: when the bootstrap or the sandwich is asked
        for, or when there are at least 4 comparisons per possible pair.
    dispersion : {None, "pearson", "auto"} or float, optional
        PoE-BT only (``"auto"`` is None for PoE-Gaussian). ``"pearson"``: estimate how noisy the judgements are against a coin
        flip (``phi``, Pearson's statistic on the collapsed pairs; about ``1 / (k + 1)``
        for a confident soft judge, 1 for hard outcomes, above 1 for correlated repeats)
        and count each judgement as ``1 / phi`` games: the scores are the optimum at
        ``alpha * phi`` and the Hessian standard errors are multiplied by ``sqrt(phi)``
        (:mod:`pycomp.dispersion`). A number: that ``phi``. Stored as
        ``Solution.dispersion``. ``"auto"``: ``"pearson"`` when the pairs leave residual
        degrees of freedom (more unique pairs than a spanning tree), else none; the
        default of the ``pycomp`` commands. Its 90% intervals held the truth 86.9-92.2% of the
        time in every setting of ``bench/results/coverage*.md`` (the plain Hessian's: 76-100%).

    Returns
    -------
    Solution

    Raises
    ------
    ValueError
        Bad values (naming the field and the first bad row by its 0-based index,
        e.g. ``i[17] = 12 is outside [0, n_items=10) (comparison 17, 0-based)``) or
        bad options.
    NoOptimumError
        A ValueError: ``alpha = 0`` and the maximum-likelihood scores do not exist;
        its ``items`` are the 0-based indices of the offending group.
    TypeError
        Arrays of the wrong type.

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached before ``tol``, or the gradient is not a number
        (an overflow; ``converged`` is then False).
    GraphWarning
        When ``alpha = 0`` and the graph is disconnected: each component is solved
        and centred separately, and scores are not comparable across components.

    Notes
    -----
    The solvers run on OpenMP threads, and importing pycomp leaves OpenMP's settings
    as they are. OpenMP's default makes idle threads spin between the short passes
    of a solve, which is fastest on an idle machine but leaves the threads fighting
    other processes for the cores on a busy or shared one. There, set
    ``OMP_WAIT_POLICY=PASSIVE`` in the environment before the first solve (the OpenMP
    runtime reads it when it loads, with the compiled core at the first solve, or
    earlier if another library such as torch loads it; it applies to every OpenMP
    library in the process), or pass ``n_threads=1``. The ``pycomp`` commands set it
    for their own process unless it is set. Measured at 10k items / 200k comparisons on a busy 2-core machine
    (``bench/bench_solve.py``, six runs alternating the two settings): medians of
    11-22 ms in four runs and 381 and 545 ms in two with the default, 15-21 ms in all
    six with ``OMP_WAIT_POLICY=PASSIVE``.

    Examples
    --------
    >>> import pycomp
    >>> sol = pycomp.solve([0, 1, 2, 0], [1, 2, 0, 2], [0.9, 0.8, 0.3, 0.6])
    >>> sol.scores.round(3)
    array([ 0.426, -0.081, -0.342])
    """
    model = check.choice(model, "model", MODELS)
    phi = _dispersion.check_dispersion(dispersion, model)
    if phi is not None:
        return _solve_with_dispersion(
            phi, i, j, p, weights=weights, n_items=n_items, model=model, method=method, alpha=alpha, beta=beta, tol=tol,
            max_iter=max_iter, device=device, return_se=return_se, se_method=se_method, n_threads=n_threads,
            bootstrap=bootstrap, seed=seed, cluster=cluster, collapse=collapse,
        )
    method = check.choice(method, "method", METHODS[model])
    device = check.choice(device, "device", DEVICES)
    se_method = check.choice(se_method, "se_method", SE_METHODS)
    alpha = check.real(alpha, "alpha", minimum=0.0)
    beta = check.real(beta, "beta")
    tol = check.real(tol, "tol", minimum=0.0, strict=True)
    if method == "auto":
        method = "newton" if model == "bt" else "cg"
    max_iter = DEFAULT_MAX_ITER[method] if max_iter is None else check.integer(max_iter, "max_iter", minimum=0)
    max_iter = min(max_iter, _INT_MAX)  # the core counts in C int; 2^31 - 1 iterations is no limit either
    if n_items is not None:
        n_items = check.integer(n_items, "n_items", minimum=2)

    device, arrays = _devices.comparison_arrays(device, i, j, p, weights)
    i, j, p, weights = _devices.host_arrays(arrays, copy=return_se)
    n_threads = 0 if n_threads is None else min(check.integer(n_threads, "n_threads", minimum=0), _INT_MAX)
    bootstrap, seed, collapsed = uncertainty.prepare(
        i, j, p, weights, n_items, device=device, collapse=collapse, bootstrap=bootstrap, seed=seed, cluster=cluster,
        se_method=se_method if return_se else None, n_threads=n_threads, model=model, beta=beta,
    )
    # Collapsed pairs give the same optimum and Hessian (pycomp.collapse); the objective is still computed from the rows.
    si, sj, sp, sw, sn = (i, j, p, weights, n_items)
    if collapsed is not None and device == "cpu":
        si, sj, sp, sw, sn = uncertainty.solver_input(collapsed)

    if device != "cpu":
        raw = _devices.solve(device, model, arrays, n_items, method, alpha, beta, tol, max_iter)
    elif model == "bt":
        raw = core().solve_bt(si, sj, sp, sw, sn, method, alpha, tol, max_iter, n_threads, objective=False)
    else:
        raw = core().solve_gaussian(si, sj, sp, sw, sn, alpha, beta, tol, max_iter, n_threads, objective=False)
    known = float(raw["objective"])

    def objective_of(scores: np.ndarray) -> float:
        return core().objective(
            i, j, p, weights, scores, scores.shape[0], model=model, alpha=alpha, beta=beta, n_threads=n_threads
        )

    sol = Solution(
        scores=raw["scores"],
        se=None,
        n_iter=int(raw["n_iter"]),
        converged=bool(raw["converged"]),
        grad_norm=float(raw["grad_norm"]),
        method=method,
        device=device,
        n_components=int(raw["n_components"]),
        labels=raw["labels"],
        model=model,
        n_inner=int(raw["n_inner"]),
        _objective=None if np.isnan(known) else known,
        _objective_of=objective_of if np.isnan(known) else None,
    )
    if not sol.converged:
        warnings.warn(_not_converged_message(sol, tol), ConvergenceWarning, stacklevel=2)
    if alpha == 0.0 and sol.n_components > 1:
        warnings.warn(
            f"the comparison graph has {sol.n_components} connected components and alpha = 0: "
            "each component was solved and centred separately, so scores are not comparable "
            "across components (use alpha > 0 to tie them together)",
            GraphWarning,
            stacklevel=2,
        )
    parts = None  # (curvature, prior curvature, scale) at the optimum, on the rows hessian_rows names
    hessian_rows = (si, sj, sp, sw) if model == "bt" else (i, j, p, weights)
    if return_se and se_method == "sandwich":
        sol.se, sol.se_method = uncertainty.sandwich_se(sol, collapsed, alpha=alpha, beta=beta, rows=(i, j, p, weights),
                                                        cluster=cluster)
    elif return_se:
        # Exact on the collapsed pairs for PoE-BT (the Gaussian's residual variance needs the rows).
        hi, hj, hp, hw = hessian_rows
        parts = hessian_parts(
            sol.scores, hi, hj, hp, hw, model=model, alpha=alpha, beta=beta, n_components=sol.n_components,
            n_threads=n_threads, device=device,
        )
        curv, prior, scale = parts
        se, sol.se_method = standard_errors(
            hi, hj, curv, prior, sol.labels, method=se_method, n_threads=n_threads, device=device
        )
        sol.se = se * np.sqrt(scale)
    if bootstrap is not None:
        uncertainty.attach_bootstrap(sol, collapsed, n_replicates=bootstrap, seed=seed, alpha=alpha, beta=beta, tol=tol,
                                     max_iter=max_iter, n_threads=n_threads)
    if alpha > 0.0 and (bootstrap is not None or (return_se and se_method == "sandwich")):
        hi, hj, hp, hw = hessian_rows
        if parts is None:
            parts = hessian_parts(
                sol.scores, hi, hj, hp, hw, model=model, alpha=alpha, beta=beta, n_components=sol.n_components,
                n_threads=n_threads, device=device,
            )
        sol.prior_shift = uncertainty.prior_shift(sol.scores, parts[0], parts[1], hi, hj, model=model, alpha=alpha)
        uncertainty.warn_if_prior_dominates(sol, alpha)
    return sol


def _solve_with_dispersion(phi, i, j, p, *, alpha, return_se, se_method, bootstrap, seed, cluster, collapse,
                           **kw) -> Solution:
    """:func:`solve` with each judgement counted as ``1 / phi`` games (:mod:`pycomp.dispersion`)."""
    alpha = check.real(alpha, "alpha", minimum=0.0)
    df = None
    if phi in ("pearson", "auto"):
        device = check.choice(kw["device"], "device", DEVICES)
        _, arrays = _devices.comparison_arrays(device, i, j, p, kw["weights"])
        hi, hj, hp, hw = _devices.host_arrays(arrays, copy=True)
        threads = kw["n_threads"]

        def solve_at(a: float) -> Solution:
            return solve(i, j, p, alpha=a, **kw)

        phi, df, fitted, caught = _dispersion.fit(solve_at, hi, hj, hp, hw, kw["n_items"], alpha,
                                                  n_threads=0 if threads is None else threads,
                                                  required=phi == "pearson")
        if phi is None:  # "auto" without residual degrees of freedom: the plain objective
            return solve(i, j, p, alpha=alpha, return_se=return_se, se_method=se_method, bootstrap=bootstrap,
                         seed=seed, cluster=cluster, collapse=collapse, **kw)
        if fitted is not None and not return_se and bootstrap is None and collapse is None:
            for w in caught:  # what that solve said, said once
                warnings.warn(w.message, w.category, stacklevel=3)
            fitted.dispersion, fitted.dispersion_df = float(phi), df  # already the solve at alpha * phi
            return fitted
    sol = solve(i, j, p, alpha=alpha * phi, return_se=return_se, se_method=se_method, bootstrap=bootstrap, seed=seed,
                cluster=cluster, collapse=collapse, **kw)
    if sol.se is not None and not sol.se_method.startswith("sandwich"):
        sol.se = sol.se * np.sqrt(phi)
    sol.dispersion, sol.dispersion_df = float(phi), df
    return sol


def _not_converged_message(sol: Solution, tol: float) -> str:
    where = f"pycomp.solve ({sol.model}, {sol.method}) stopped after {sol.n_iter} iterations"
    if np.isnan(sol.grad_norm):
        return (
            f"{where}: the gradient of the objective is NaN (an overflow, e.g. from weights near the "
            "largest float), so the scores are not an optimum; rescale the weights"
        )
    return f"{where} with ||grad||_inf = {sol.grad_norm:.3g} > tol = {tol:g}; raise max_iter or tol"

