"""Warnings and errors raised by pycomp."""


class ConvergenceWarning(UserWarning):
    """A solver stopped before ||grad F||_inf reached ``tol``."""


class GraphWarning(UserWarning):
    """The comparison graph is disconnected and was solved per component."""


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit``."""
