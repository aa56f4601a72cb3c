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

With few comparisons per item all three describe the sampling noise of the judgements
only: the prior (alpha) shrinks scores toward 0 and intervals are about the shrunk
scores. ``bench/bench_coverage.py`` measures how often 90% intervals contain the truth.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

import numpy as np

from pycomp import bootstrap as _boot
from pycomp import collapse as _collapse
from pycomp.bootstrap import check_level, p_top, percentile_interval, rank_interval, ranks  # noqa: F401
from pycomp.exceptions import ConvergenceWarning

__all__ = ["prepare", "solver_input", "attach_bootstrap", "sandwich_se", "check_level", "percentile_interval",
           "ranks", "rank_interval", "p_top"]


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
