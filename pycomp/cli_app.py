"""Deprecated: the ``pycomp`` typer app is :data:`pycomp.cli.app`; this alias keeps old imports working."""
from pycomp.cli import app  # noqa: F401
