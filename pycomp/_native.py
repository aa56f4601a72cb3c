"""The compiled core, loaded on first use.

``import pycomp`` loads no OpenMP runtime: the core (and libgomp with it) loads at
the first solve, so an application (the ``pycomp`` command among them) can still set
``OMP_WAIT_POLICY`` or ``OMP_NUM_THREADS`` after importing pycomp, and before any
OpenMP library reads them.
"""
import importlib
import os

_CORE = None


def core():
    """The extension module ``pycomp._core``.

    Raises
    ------
    ImportError
        If the compiled core is missing; when pycomp was imported from a source
        checkout, the message says why and what to run instead.
    """
    global _CORE
    if _CORE is None:
        try:
            _core = importlib.import_module("pycomp._core")
        except ImportError as exc:
            here = os.path.dirname(os.path.abspath(__file__))
            if os.path.isfile(os.path.join(os.path.dirname(here), "CMakeLists.txt")):
                raise ImportError(
                    f"pycomp was imported from its source folder {here}, which has no compiled core "
                    f"(pycomp._core). That happens when Python runs in a clone of the repository and the "
                    f"clone's folder comes first on sys.path, and the package is installed without -e. "
                    f"Start Python outside the clone, or install with `pip install -e .` to work on the "
                    f"source; the test suite (`python -m pytest tests`) handles this itself."
                ) from exc
            raise
        _CORE = _core
    return _CORE
