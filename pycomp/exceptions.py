"""Warnings and errors raised by pycomp."""
from typing import Any

import numpy as np


class ConvergenceWarning(UserWarning):
    """A solver stopped before ||grad F||_inf reached ``tol``."""


class GraphWarning(UserWarning):
    """The comparison graph is disconnected and was solved per component."""


class PriorWarning(UserWarning):
    """The prior (alpha) moves many scores by a sizeable part of their interval widths."""


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``."""


class NoOptimumError(ValueError):
    """With ``alpha = 0``, the maximum-likelihood PoE-BT scores do not exist.

    A group of items never beat (or never lost to) the other items of their
    connected component, so their scores diverge. Raised by :func:`pycomp.solve`
    for the first such group found; the message names up to five items by their
    0-based item indices.

    Parameters
    ----------
    message : str
    items : array_like of int
        0-based indices of every item of the group, ascending.
    component : int
        The connected component the group belongs to (``Solution.labels`` numbering).
    direction : {"never beat", "never lost to"}
        Whether the group never beat the rest of its component (its scores diverge
        to -inf) or never lost to it (+inf).

    Attributes
    ----------
    items : ndarray of int64
    component : int
    direction : str
    """

    def __init__(self, message: str, items: Any, component: int, direction: str):
        super().__init__(message)
        self.items = np.asarray(items, dtype=np.int64)
        self.component = int(component)
        self.direction = str(direction)

    def __reduce__(self):
        return type(self), (str(self), self.items, self.component, self.direction)
