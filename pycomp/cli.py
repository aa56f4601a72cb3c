"""Entry point of the ``pycomp`` command."""
import importlib

from pycomp.cli_app import app

COMMAND_MODULES = (
    "pycomp.commands.solve",
    "pycomp.commands.rank",
    "pycomp.commands.train",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name)


def main() -> None:
    """Run the ``pycomp`` command line."""
    app()


if __name__ == "__main__":
    main()
