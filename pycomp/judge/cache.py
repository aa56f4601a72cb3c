"""A judgement cache shared by every run and command: never judge the same prompt twice.

An entry holds the answer-label log-probabilities a backend gave for one
rendered prompt, keyed by the backend's fingerprint (model and its weights'
identity, adapter, precision, quantization, chat template, answer tokens: see
:meth:`pycomp.judge.backend.JudgeBackend.fingerprint`) and the SHA-256 of the
prompt. Anything that changes the answer changes one of the two, so a hit is
the answer the backend would give again (up to the last bits of floating point:
batching and padding move a log-probability by about 1e-6).

The store is one SQLite file in write-ahead-log mode: several processes read
and write it at once (a writer waits up to ``timeout`` seconds for another
writer's short transaction), and a process killed at any point leaves it
consistent (a transaction is either in the file or not). It lives in
``$PYCOMP_CACHE_DIR``, else ``<pycomp cache>/judgements`` (next to the models,
``~/.cache/pycomp/judgements``). Being local, it must not sit on a network file
system (SQLite's locking is not reliable there).

The per-run judgements file stays the record of a run; the cache only spares
the judging of prompts some earlier run already judged.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["ENV_VAR", "DB_NAME", "JudgementCache", "CacheError", "default_cache_dir", "open_cache",
           "fingerprint_key", "prompt_digest"]

#: Environment variable naming the folder of the judgement cache.
ENV_VAR = "PYCOMP_CACHE_DIR"
#: File name of the SQLite database inside the cache folder.
DB_NAME = "judgements.sqlite3"
SCHEMA_VERSION = 1
_CHUNK = 500  # keys per SELECT (well under SQLite's bound-variable limit)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fingerprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a process holding a cleared id cannot mislabel
    key TEXT NOT NULL UNIQUE,
    backend TEXT,
    model TEXT,
    adapter TEXT,
    n_labels INTEGER NOT NULL,
    labels TEXT,
    fingerprint TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS judgements (
    fp INTEGER NOT NULL REFERENCES fingerprints(id),
    prompt BLOB NOT NULL,
    logp BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (fp, prompt)
) WITHOUT ROWID;
"""


class CacheError(RuntimeError):
    """The judgement cache cannot be opened or used (unwritable folder, a file that is not a cache)."""


def default_cache_dir() -> Path:
    """The cache folder: ``$PYCOMP_CACHE_DIR``, else ``judgements`` in pycomp's cache (not created)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from pycomp.judge.models import cache_dir

    return cache_dir() / "judgements"


def fingerprint_key(fingerprint: dict) -> str:
    """SHA-256 of the fingerprint as canonical JSON (sorted keys)."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prompt_digest(prompt: str) -> bytes:
    """The 32-byte SHA-256 of a rendered prompt (its key in the cache)."""
    return hashlib.sha256(prompt.encode("utf-8")).digest()


def _encode(logp) -> bytes:
    return np.asarray(logp, dtype="<f8").tobytes()


def _decode(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)


class JudgementCache:
    """The judgement cache in one folder.

    Parameters
    ----------
    folder : path, optional
        Where the database lives (created); default :func:`default_cache_dir`.
    timeout : float
        Seconds a write waits for another process's write to finish.

    Raises
    ------
    CacheError
        The folder cannot be created or written, or the file there is not a
        pycomp judgement cache.
    """

    def __init__(self, folder: Union[str, os.PathLike, None] = None, *, timeout: float = 60.0):
        self.folder = Path(folder).expanduser() if folder is not None else default_cache_dir()
        self.path = self.folder / DB_NAME
        self.timeout = float(timeout)
        self._conn: Optional[sqlite3.Connection] = None
        self._fp_ids: Dict[str, Tuple[int, int]] = {}  # fingerprint key -> (row id, n_labels)

    # ---- connection ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open the judgement cache {self.path}: {exc}; choose another folder with "
                             f"--cache-dir (or ${ENV_VAR}), or turn it off with --no-cache") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: consistent after any crash of the process
            self._check_version(conn)
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CacheError(f"{self.path} is not a usable pycomp judgement cache ({exc}); delete it, or choose "
                             f"another folder with --cache-dir (or ${ENV_VAR}), or pass --no-cache") from None
        self._conn = conn
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version}, this pycomp reads {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection (reopened on the next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._fp_ids.clear()

    def __enter__(self) -> "JudgementCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JudgementCache({str(self.folder)!r})"

    # ---- fingerprints -------------------------------------------------------------------
    def _fingerprint_id(self, fingerprint: dict, n_labels: int, create: bool,
                        labels: Optional[Sequence[str]] = None) -> Optional[int]:
        key = fingerprint_key(fingerprint)
        row = self._fp_ids.get(key)
        conn = self._connect()
        if row is None:
            row = conn.execute("SELECT id, n_labels FROM fingerprints WHERE key = ?", (key,)).fetchone()
        if row is None:
            if not create:
                return None
            adapter = fingerprint.get("adapter")
            conn.execute(
                "INSERT OR IGNORE INTO fingerprints (key, backend, model, adapter, n_labels, labels, fingerprint, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, str(fingerprint.get("backend")), str(fingerprint.get("model")),
                 None if adapter is None else str(adapter), int(n_labels),
                 None if labels is None else json.dumps(list(labels)),
                 json.dumps(fingerprint, sort_keys=True, default=str), time.time()))
            row = conn.execute("SELECT id, n_labels FROM fingerprints WHERE key = ?", (key,)).fetchone()
        if int(row[1]) != int(n_labels):
            raise CacheError(f"{self.path}: fingerprint {key[:12]} holds {row[1]} labels, this backend has {n_labels}")
        self._fp_ids[key] = (int(row[0]), int(row[1]))
        return int(row[0])

    # ---- entries ------------------------------------------------------------------------
    def get(self, fingerprint: dict, n_labels: int, digests: Sequence[bytes]) -> Dict[bytes, np.ndarray]:
        """The cached log-probabilities of the prompts with these digests.

        Parameters
        ----------
        fingerprint : dict
            The backend's :meth:`~pycomp.judge.backend.JudgeBackend.fingerprint`.
        n_labels : int
        digests : sequence of bytes
            :func:`prompt_digest` of each prompt.

        Returns
        -------
        dict
            digest -> float64 array of ``n_labels`` log-probabilities, for the
            prompts found.
        """
        fp = self._fingerprint_id(fingerprint, n_labels, create=False)
        if fp is None or len(digests) == 0:
            return {}
        conn = self._connect()
        found: Dict[bytes, np.ndarray] = {}
        digests = list(digests)
        for s in range(0, len(digests), _CHUNK):
            chunk = digests[s:s + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT prompt, logp FROM judgements WHERE fp = ? AND prompt IN ({marks})",
                                (fp, *chunk)).fetchall()
            for prompt, blob in rows:
                found[bytes(prompt)] = _decode(blob)
        return found

    def put(self, fingerprint: dict, entries: Iterable[Tuple[bytes, Sequence[float]]],
            labels: Optional[Sequence[str]] = None) -> int:
        """Store ``(digest, logp)`` entries in one transaction; existing entries are kept.

        ``labels`` (the answer strings, shown by :meth:`info`) are recorded with a new fingerprint.

        Returns
        -------
        int
            How many entries were new.
        """
        entries = [(d, np.asarray(lp, dtype=np.float64).reshape(-1)) for d, lp in entries]
        if not entries:
            return 0
        n_labels = len(entries[0][1])
        if any(len(lp) != n_labels for _, lp in entries):
            raise ValueError("every cache entry of one put() must have the same number of labels")
        fp = self._fingerprint_id(fingerprint, n_labels, create=True, labels=labels)
        conn = self._connect()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO judgements (fp, prompt, logp, created) VALUES (?, ?, ?, ?)",
                             [(fp, d, _encode(lp), now) for d, lp in entries])
            added = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(added)

    # ---- inspection and clearing --------------------------------------------------------
    def files(self) -> List[Path]:
        """The database file and its write-ahead log and index, where they exist."""
        return [p for p in (self.path, Path(str(self.path) + "-wal"), Path(str(self.path) + "-shm")) if p.exists()]

    def size_bytes(self) -> int:
        """Bytes on disk (database, write-ahead log and index)."""
        return sum(p.stat().st_size for p in self.files())

    def info(self) -> dict:
        """Entries, size and one row per fingerprint (backend, model, adapter, labels, entries, last write)."""
        if not self.path.exists():
            return {"path": str(self.path), "exists": False, "entries": 0, "size_bytes": 0, "fingerprints": []}
        conn = self._connect()
        rows = conn.execute(
            "SELECT f.key, f.backend, f.model, f.adapter, f.n_labels, f.labels, f.fingerprint, COUNT(j.prompt), "
            "MAX(j.created) FROM fingerprints f LEFT JOIN judgements j ON j.fp = f.id GROUP BY f.id ORDER BY f.id"
        ).fetchall()
        fps = []
        for key, backend, model, adapter, n_labels, labels, text, count, last in rows:
            fp = json.loads(text)
            fps.append({"key": key[:12], "backend": backend, "model": model, "adapter": adapter,
                        "labels": json.loads(labels) if labels else fp.get("labels") or fp.get("label_ids"),
                        "n_labels": int(n_labels), "entries": int(count),
                        "last_written": (time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(last))
                                         if last is not None else None),
                        "fingerprint": fp})
        return {"path": str(self.path), "exists": True, "entries": int(sum(f["entries"] for f in fps)),
                "size_bytes": self.size_bytes(), "fingerprints": fps}

    def clear(self, model: Optional[str] = None) -> int:
        """Delete every entry, or those of one model; returns how many entries were deleted.

        Parameters
        ----------
        model : str, optional
            A model as ``pycomp cache info`` lists it (``smollm2-135m@b179c9523d0e6a0f``), its name
            before the ``@`` (``smollm2-135m``), or a fingerprint key (its first characters, as listed).

        Raises
        ------
        CacheError
            ``model`` matches no fingerprint in the cache (the models it holds are named).
        """
        if not self.path.exists():
            if model is not None:
                raise CacheError(f"the judgement cache {self.path} is empty: nothing to clear for model {model!r}")
            return 0
        conn = self._connect()
        rows = conn.execute("SELECT id, key, model FROM fingerprints").fetchall()
        if model is None:
            chosen = [r[0] for r in rows]
        else:
            chosen = [fid for fid, key, name in rows
                      if model in (name, str(name).split("@")[0]) or (len(model) >= 6 and key.startswith(model))]
            if not chosen:
                held = sorted({str(r[2]) for r in rows})
                raise CacheError(f"no cached judgements for model {model!r} in {self.path}; it holds: "
                                 f"{', '.join(held) if held else 'nothing'}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = 0
            for fid in chosen:
                deleted += conn.execute("DELETE FROM judgements WHERE fp = ?", (fid,)).rowcount
                conn.execute("DELETE FROM fingerprints WHERE id = ?", (fid,))
            # entries a running process added under a fingerprint cleared meanwhile (no longer readable)
            conn.execute("DELETE FROM judgements WHERE fp NOT IN (SELECT id FROM fingerprints)")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._fp_ids.clear()
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")  # give the space back; skipped while another process reads the file
        except sqlite3.OperationalError:
            pass
        return int(deleted)


def open_cache(enabled: bool = True, folder: Union[str, os.PathLike, None] = None) -> Optional[JudgementCache]:
    """The judgement cache a command uses: None with ``enabled=False`` (``--no-cache``).

    Parameters
    ----------
    enabled : bool
    folder : path, optional
        ``--cache-dir``; default :func:`default_cache_dir`.
    """
    if not enabled:
        return None
    return JudgementCache(folder)
