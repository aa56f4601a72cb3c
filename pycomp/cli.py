"""Entry point of the ``pycomp`` command (importing this module registers every command)."""
import importlib
import sys

COMMAND_MODULES = (
    "pycomp.commands.solve",
    "pycomp.commands.rank",
    "pycomp.commands.train",
)

try:
    from pycomp.cli_app import app
except ImportError as _exc:  # the solver-only install (numpy alone) has no typer/pandas
    app = None
    _MISSING = getattr(_exc, "name", None) or str(_exc)
else:
    for _name in COMMAND_MODULES:
        importlib.import_module(_name)


def main() -> None:
    """Run the ``pycomp`` command line."""
    if app is None:
        sys.stderr.write(
            f"error: the pycomp command needs {_MISSING}, which is not installed: "
            f"pip install 'pycomp[cli]' (or 'pycomp[llm]' for the judge and the trainer)\n"
        )
        raise SystemExit(2)
    app()


if __name__ == "__main__":
    main()
