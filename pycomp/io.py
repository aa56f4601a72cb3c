"""Reading and writing the plain files every stage uses (CSV, JSONL, Parquet)."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pandas as pd

from pycomp.config import PathLike

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_SUPPORTED = ".csv, .tsv, .jsonl (or .json, .ndjson), .parquet (or .pq)"


def table_format(path: PathLike) -> str:
    """Return the table format implied by a file name.

    Parameters
    ----------
    path : str or os.PathLike
        File name ending in .csv, .tsv, .jsonl (.json, .ndjson) or .parquet (.pq).

    Returns
    -------
    str
        One of "csv", "tsv", "jsonl", "parquet".

    Raises
    ------
    ValueError
        If the extension is not one of those.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        found = f"unknown table format {suffix!r}" if suffix else "no extension, so no table format"
        raise ValueError(f"{os.fspath(path)!r}: {found}; use one of {_SUPPORTED}")
    return _FORMATS[suffix]


def check_output(path: PathLike) -> str:
    """Check, before any work, that a table can be written to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its extension picks the format.

    Returns
    -------
    str
        The format, as :func:`table_format` gives it.

    Raises
    ------
    ValueError
        If the extension is not a table format, ``path`` is a folder, or the
        nearest existing folder above it is a file or is not writable.
    ImportError
        If the format is Parquet and neither pyarrow nor fastparquet is installed.
    """
    fmt = table_format(path)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{os.fspath(path)!r} is a folder, not a file")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{os.fspath(path)!r} cannot be written: {os.fspath(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{os.fspath(path)!r} cannot be written: the folder {os.fspath(parent)!r} is not writable")
    if fmt == "parquet" and not _parquet_engine():
        raise ImportError(f"writing {os.fspath(path)!r} needs pyarrow: pip install 'pycomp[parquet]'")
    return fmt


def _parquet_engine() -> bool:
    for name in ("pyarrow", "fastparquet"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return True
    return False


def read_table(path: PathLike) -> pd.DataFrame:
    """Read a CSV, TSV, JSONL or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its extension picks the format.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the format is unknown or the file cannot be parsed (the message names the file).
    """
    fmt = table_format(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{os.fspath(path)!r} does not exist")
    try:
        if fmt == "csv":
            return pd.read_csv(path)
        if fmt == "tsv":
            return pd.read_csv(path, sep="\t")
        if fmt == "jsonl":
            return pd.read_json(path, lines=True)
        return pd.read_parquet(path)
    except ImportError as exc:
        raise ImportError(f"reading {os.fspath(path)!r} needs pyarrow: pip install 'pycomp[parquet]'") from exc
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise ValueError(f"could not read {os.fspath(path)!r} as {fmt}: {exc}") from exc


def write_table(frame: pd.DataFrame, path: PathLike) -> Path:
    """Write a DataFrame as CSV, TSV, JSONL or Parquet, chosen by the extension.

    The file is written to a temporary name and renamed, so a reader never sees
    a half-written table.

    Parameters
    ----------
    frame : pandas.DataFrame
    path : str or os.PathLike

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If the extension is not a table format, or the format cannot hold the
        table (e.g. Parquet and a column of mixed types).
    ImportError
        If the format is Parquet and no Parquet engine (pyarrow) is installed.
    OSError
        If the file cannot be written (the message names it).
    """
    path = Path(path)
    fmt = table_format(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(frame, tmp, fmt)
        os.replace(tmp, path)
    except ImportError as exc:
        raise ImportError(f"writing {os.fspath(path)!r} needs pyarrow: pip install 'pycomp[parquet]'") from exc
    except OSError as exc:
        raise OSError(f"could not write {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:  # e.g. pyarrow refusing a column of mixed types
        raise ValueError(f"could not write {os.fspath(path)!r} as {fmt}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
