"""Reading and writing the plain files every stage uses (CSV, JSONL, Parquet)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import pandas as pd

PathLike = Union[str, os.PathLike]

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


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
        raise ValueError(
            f"{os.fspath(path)!r}: unknown table format {suffix!r}; use one of {sorted(_FORMATS)}"
        )
    return _FORMATS[suffix]


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
    """
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    elif fmt == "tsv":
        frame.to_csv(tmp, index=False, sep="\t")
    elif fmt == "jsonl":
        frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    else:
        try:
            frame.to_parquet(tmp, index=False)
        except ImportError as exc:
            raise ImportError(f"writing {os.fspath(path)!r} needs pyarrow: pip install 'pycomp[parquet]'") from exc
    os.replace(tmp, path)
    return path
