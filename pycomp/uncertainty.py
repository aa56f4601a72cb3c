"""How sure the scores and the ranking are: what :func:`pycomp.solve` adds for it.

Three ways to the uncertainty of the scores, and when each is right:

* **Hessian** (``return_se=True``, ``se_method="auto" | "exact" | "local"``):
  sqrt(diag(H^-1)), the curvature of the objective at the optimum. Right when the
  model is the truth *and* each comparison is an independent draw from it: hard
  outcomes (win / loss) from a Bradley-Terry judge, each comparison judged once. A soft
  judgement p is then treated as p wins out of one game, whose variance p (1 - p)
  it assumes: too wide for a confident, consistent judge (soft p near 0 or 1 with little
  spread), too narrow when repeated judgements of a pair are correlated.
* **Sandwich** (``se_method="sandwich"``): sqrt(diag(H^-1 M H^-1)), with M the
  observed spread of the per-comparison gradients. Right whenever comparisons are
  independent, even if the model's variance is wrong (soft p, over- or under-
  dispersion, ties); with ``cluster`` it allows any correlation within a cluster (a
  user, a prompt, a judged pair) and needs many clusters. It is a normal
  approximation of each score alone: no ranks. Dense up to
  ``pycomp.standard_errors.SANDWICH_LIMIT`` (4000) items; above, dense per component
  of up to 2000 items and a local approximation for larger components
  (``sol.se_method`` "sandwich-local", O(comparisons); its accuracy is that of the
  local Hessian approximation, see :func:`pycomp.standard_errors.local_sandwich_variance`).
  ``cluster`` has no local form: above the limit use ``bootstrap=B`` with ``cluster``.
* **Bootstrap** (``bootstrap=B``): re-solves on comparisons (or clusters) drawn with
  replacement. Right under the same independence as the sandwich, without the normal
  approximation (skewed, bounded or small-sample scores) and for any function of the
  scores: rank intervals, P(best), P(top k). It costs B solves, which the compiled core
  runs warm-started and in parallel, on the collapsed pairs (:mod:`pycomp.collapse`).

* **Dispersion** (``dispersion="pearson"`` or ``"auto"``, :mod:`pycomp.dispersion`; the
  commands' default): the Hessian interval with the judgements' measured noise, ``phi``
  (Pearson's statistic on the collapsed pairs, in units of a coin flip's variance), and
  each judgement counted as ``1 / phi`` games, so that the prior (``alpha`` games) weighs
  what it should against them: scores at ``alpha * phi``, standard errors times
  ``sqrt(phi)``. Right for independent soft or hard judgements and for repeats of a
  pair that share a bias (the collapsed pairs see it), whatever the prior: 86.9-92.2% of
  90% intervals held the truth in every setting of ``bench/results/coverage*.md``.
  It changes the scores when ``alpha > 0`` (less shrinkage for a confident judge).

With few comparisons per item the Hessian, sandwich and bootstrap describe the sampling
noise of the judgements only: the prior (alpha) shrinks scores toward 0 and intervals
are about the shrunk scores. ``bench/bench_coverage.py`` measures how often 90% intervals contain the truth:
with a confident soft judge, 400 comparisons of 100 items and alpha = 1, the sandwich and
bootstrap intervals hold the true score about half the time, because the prior's pull is
as large as the intervals are narrow. :func:`prior_shift` estimates that pull, and with a
bootstrap or sandwich standard errors :func:`pycomp.solve` stores it
(``Solution.prior_shift``) and warns (:class:`pycomp.PriorWarning`) when intervals that
far off would hold the unshrunk scores less than 85% of the time. The Hessian's interval
includes the prior's curvature and is wide enough there (too wide: 99-100% for soft
judgements); the dispersion interval is the one that is both wide enough and no wider.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

import numpy as np

from pycomp import bootstrap as _boot
from pycomp import collapse as _collapse
from pycomp.bootstrap import check_level, p_top, percentile_interval, rank_interval, ranks  # noqa: F401
from pycomp.exceptions import ConvergenceWarning, PriorWarning

__all__ = ["prepare", "solver_input", "attach_bootstrap", "sandwich_se", "check_level", "percentile_interval",
           "ranks", "rank_interval", "p_top", "prior_shift", "warn_if_prior_dominates"]

# PriorWarning: when the prior's shifts alone would take the mean coverage of normal 90%
# intervals as wide as the ones given below this.
PRIOR_COVERAGE_FLOOR = 0.85
_Z90 = 1.6448536269514722


def prepare(i, j, p, weights, n_items, *, device: str, collapse: Optional[bool], bootstrap, seed, cluster,
            se_method: Optional[str], n_threads: int, model: str = "bt", beta: float = 0.5):
    """Check the uncertainty options of a solve and collapse the comparisons when useful.

    Returns
    -------
    bootstrap : int or None
    seed : int
    collapsed : pycomp._core.Collapsed or None
        Collapsed (with units when bootstrapping) when ``collapse`` is True, when the
        bootstrap or the sandwich needs it, or, with ``collapse=None``, when
        :func:`pycomp.collapse.worth_collapsing` says so.
    """
    if bootstrap is not None:
        bootstrap = _boot.check_replicates(bootstrap)
    seed = _boot.check_seed(seed)
    if collapse is not None and not isinstance(collapse, (bool, np.bool_)):
        raise TypeError(f"collapse must be True, False or None (decide), got {collapse!r}")
    if cluster is not None and bootstrap is None and se_method != "sandwich":
        raise ValueError("cluster is used by the bootstrap and the sandwich standard error: "
                         "give bootstrap=B or return_se=True with se_method='sandwich', or drop cluster")
    if cluster is not None and se_method == "sandwich":
        from pycomp.standard_errors import SANDWICH_LIMIT

        n = _collapse.item_count(i, j, n_items)
        if n > SANDWICH_LIMIT:
            raise ValueError(
                f"se_method='sandwich' with cluster needs dense {n} x {n} matrices (limit {SANDWICH_LIMIT} items): "
                "the cluster-robust meat has no local approximation; use bootstrap=B with cluster for "
                "cluster-robust intervals of larger problems (or drop cluster for the local sandwich)"
            )
    needed = bootstrap is not None or se_method == "sandwich"
    if collapse is False and needed:
        raise ValueError("collapse=False but the bootstrap and the sandwich run on collapsed comparisons: "
                         "leave collapse at None")
    # A collapsed pair keeps one orientation: a row (j, i, p) becomes (i, j, 1 - p). The Gaussian
    # target p - beta then becomes (1 - p) - beta instead of beta - p: exact only at beta = 1/2.
    orientation_free = model != "gaussian" or float(beta) == 0.5
    if not orientation_free and (collapse or needed):
        raise ValueError(f"the bootstrap, the sandwich standard error and collapse=True need beta = 0.5 with "
                         f"model='gaussian' (got beta={beta!r}): collapsing repeated pairs flips their orientation, "
                         f"which changes the Gaussian target p - beta unless beta = 0.5")
    automatic = collapse is None
    if automatic:
        n = _collapse.item_count(i, j, n_items)
        collapse = needed or (device == "cpu" and orientation_free and _collapse.worth_collapsing(i.shape[0], n))
    if not collapse:
        return bootstrap, seed, None
    collapsed = _collapse.collapse(i, j, p, weights=weights, n_items=n_items, cluster=cluster,
                                   units=bootstrap is not None, n_threads=n_threads)
    if automatic and not needed and not np.all(np.isfinite(collapsed.total)):
        return bootstrap, seed, None  # weight sums overflow: the solvers report it on the rows
    return bootstrap, seed, collapsed


def solver_input(collapsed) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(i, j, p, weights, n_items) of the collapsed pairs, for the solvers."""
    a, b, p, w = _collapse.pair_arrays(collapsed)
    return a, b, p, w, int(collapsed.n_items)


def attach_bootstrap(sol, collapsed, *, n_replicates: int, seed: int, alpha: float, beta: float, tol: float,
                     max_iter: int, n_threads: int) -> None:
    """Run the bootstrap from ``sol.scores`` and store the replicates in ``sol``."""
    if alpha == 0.0 and sol.n_components > 1:
        raise ValueError(
            f"bootstrap with alpha = 0 needs a connected comparison graph, but it has {sol.n_components} "
            "components whose scores are not comparable; use alpha > 0"
        )
    reps, _, ok = _boot.replicates(
        collapsed, sol.scores, n_replicates=n_replicates, seed=seed, model=sol.model, alpha=alpha, beta=beta,
        tol=tol, max_iter=max(max_iter, 100), n_threads=n_threads,
    )
    if not ok.all():
        bad = int(np.count_nonzero(~ok))
        warnings.warn(
            f"{bad} of {n_replicates} bootstrap replicates did not reach tol = {tol:g} (with alpha = 0 a replicate "
            "may have no optimum, e.g. an item that wins every drawn comparison); their scores are where the solve "
            "stopped. alpha > 0 avoids this",
            ConvergenceWarning,
            stacklevel=3,
        )
    sol.replicates = reps
    sol.replicates_converged = ok


def sandwich_se(sol, collapsed, *, alpha: float, beta: float, rows: tuple, cluster: Any) -> Tuple[np.ndarray, str]:
    """The sandwich standard errors of ``sol`` (cluster-robust with ``cluster``) and how they were computed.

    Returns ``(se, used)``, ``used`` as in :func:`pycomp.standard_errors.sandwich_standard_errors`:
    "sandwich" (dense), "sandwich-local" or "sandwich+sandwich-local".
    """
    from pycomp.standard_errors import sandwich_standard_errors

    codes = None
    if cluster is not None:
        codes, _ = _collapse.cluster_codes(cluster, rows[0].shape[0])
    return sandwich_standard_errors(collapsed, sol.scores, sol.labels, model=sol.model, alpha=alpha, beta=beta,
                                    rows=rows, cluster=codes)


def prior_shift(scores: np.ndarray, curv: np.ndarray, prior_curv: np.ndarray, i: np.ndarray, j: np.ndarray, *,
                model: str, alpha: float, rtol: float = 1e-6, max_iter: int = 200) -> np.ndarray:
    """How far the prior moved the scores: one Newton step toward the optimum without it.

    ``-H^-1 grad R(s)``, with R the prior term of the objective (``alpha [-log sig(s) -
    log sig(-s)]`` for PoE-BT, ``alpha/2 s^2`` for PoE-Gaussian) and H the Hessian at
    the optimum (comparisons plus prior, definite when alpha > 0). Solved by
    Jacobi-preconditioned conjugate gradients in O(comparisons) a step, so it scales
    like the solvers. Negative for positive scores (the prior pulls toward 0). Where
    the optimum without the prior is far (few comparisons per item) the step falls
    short of it: a lower bound on the pull, in practice.

    Parameters
    ----------
    scores : ndarray, shape (n_items,)
    curv : ndarray, shape (m,)
        Per-comparison curvature at ``scores`` (:func:`pycomp.standard_errors.hessian_parts`).
    prior_curv : ndarray, shape (n_items,)
        Per-item prior curvature at ``scores`` (> 0).
    i, j : ndarray of int64, shape (m,)
    model : {"bt", "gaussian"}
    alpha : float
        > 0.
    rtol, max_iter : float, int
        CG stops when the residual is below ``rtol`` times the right-hand side.

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    n = scores.shape[0]
    diag = np.bincount(i, curv, minlength=n) + np.bincount(j, curv, minlength=n) + prior_curv

    def hessian_times(x):
        t = curv * (x[i] - x[j])
        return np.bincount(i, t, minlength=n) - np.bincount(j, t, minlength=n) + prior_curv * x

    # d/ds of -log sig(s) - log sig(-s) is 2 sig(s) - 1 = tanh(s / 2).
    rhs = -alpha * (np.tanh(scores / 2.0) if model == "bt" else scores)
    x = rhs / diag
    r = rhs - hessian_times(x)
    z = r / diag
    d = z.copy()
    rz = float(r @ z)
    stop = rtol * float(np.linalg.norm(rhs))
    for _ in range(max_iter):
        if float(np.linalg.norm(r)) <= stop:
            break
        hd = hessian_times(d)
        step = rz / float(d @ hd)
        x += step * d
        r -= step * hd
        z = r / diag
        rz, rz_old = float(r @ z), rz
        d = z + (rz / rz_old) * d
    return x


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) to about 1e-7 (Abramowitz and Stegun 7.1.26), NumPy only."""
    y = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * y)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-y * y)
    return 0.5 * (1.0 + np.sign(x) * erf)


def coverage_under_shift(shift: np.ndarray, half_width: np.ndarray) -> float:
    """Mean coverage of normal 90% intervals of these half-widths whose centres are off by ``shift``.

    An item with no width and no shift counts as covered at the nominal 90%.
    """
    shift = np.abs(np.asarray(shift, dtype=np.float64))
    sigma = np.asarray(half_width, dtype=np.float64) / _Z90
    k = np.divide(shift, sigma, out=np.where(shift > 0, np.inf, 0.0), where=sigma > 0)
    return float(np.mean(_normal_cdf(_Z90 - k) - _normal_cdf(-_Z90 - k)))


def warn_if_prior_dominates(sol, alpha: float, stacklevel: int = 3) -> None:
    """Warn (:class:`pycomp.PriorWarning`) when ``sol.prior_shift`` is large against the 90% intervals.

    The test: if the true scores were ``scores - prior_shift`` and the intervals normal with
    the given 90% widths, their mean coverage would fall below 85%. Bootstrap and sandwich
    intervals only: the Hessian's includes the prior's curvature, whose width covers the
    pull (``bench/bench_coverage.py``).
    """
    sandwich = sol.se is not None and str(sol.se_method).startswith("sandwich")
    if sol.prior_shift is None or (sol.replicates is None and not sandwich):
        return
    low, high = percentile_interval(sol.replicates, 0.9) if sol.replicates is not None else (
        sol.scores - _Z90 * sol.se, sol.scores + _Z90 * sol.se)
    half = (high - low) / 2.0
    if not (np.all(np.isfinite(sol.prior_shift)) and np.all(np.isfinite(half))):
        return  # a solve that did not converge says so itself
    coverage = coverage_under_shift(sol.prior_shift, half)
    if coverage >= PRIOR_COVERAGE_FLOOR:
        return
    what = "bootstrap intervals" if sol.replicates is not None else "sandwich standard errors"
    warnings.warn(
        f"the prior (alpha = {alpha:g}) moved the scores toward 0 by about as much as the 90% {what} are wide "
        f"(largest shift {np.abs(sol.prior_shift).max():.3g}, Solution.prior_shift): normal 90% intervals that "
        f"wide and that far off would hold the unshrunk scores only {100 * coverage:.0f}% of the time. They "
        "describe the shrunk scores (a confident judge with few comparisons per item). dispersion='pearson' "
        "(--dispersion auto, the commands' default) counts each judgement as the games it is worth, which "
        "weakens the prior to match; with a connected comparison graph a small alpha (alpha=0.01, --alpha 0.01) "
        "gives intervals for the unshrunk scores; the Hessian standard errors (return_se=True) include the "
        "prior's own width",
        PriorWarning,
        stacklevel=stacklevel,
    )
