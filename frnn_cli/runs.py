"""Files on disk: atomic writers, run folders and the metadata every run records.

Every file frnn writes goes through :func:`atomic_write_bytes`: the data goes to a
temporary file in the same folder, is flushed to disk, and is renamed over the target
(``os.replace`` is atomic on POSIX), so an interrupted command leaves either the old file
or the new one, never half of one.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Raises
    ------
    OSError
        If the folder does not exist or is not writable (the target is left untouched).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Save arrays to an ``.npz`` file atomically (``np.savez`` into memory, then rename)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON atomically; see :func:`atomic_write_bytes`."""
    import json

    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def create_run_dir(runs_dir: str | Path, kind: str, now: datetime | None = None) -> Path:
    """Create a new, empty run folder ``<runs_dir>/<YYYY-MM-DD_HH-MM-SS>-<kind>-<id>``.

    The id is 6 random hex digits; the folder is created with ``mkdir(exist_ok=False)``
    and a new id is drawn on a collision, so two runs started in the same second (even in
    two processes) never share a folder. ``runs_dir`` is created if missing.

    Parameters
    ----------
    runs_dir : str or Path
        Parent folder (``runs/`` by default in the CLI).
    kind : str
        "train", "sweep", "vanishing", ...
    now : datetime, optional
        Timestamp to use (local time); default: the current time.

    Returns
    -------
    Path of the new folder.

    Raises
    ------
    OSError
        If ``runs_dir`` cannot be created or written.
    """
    import secrets

    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    parent = Path(runs_dir)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f"{stamp}-{kind}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit hash (with "-dirty" if the tree has changes), or None.

    None when ``cwd`` is not inside a git checkout or git is not installed.
    """
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def base_meta(seed: int | None, argv: list[str] | None = None) -> dict:
    """The fields every run's ``meta.json`` starts with.

    Returns
    -------
    dict with "command" (the command line), "frnn", "python", "numpy" (versions),
    "git_commit" (or None), "seed", "start_time" (ISO 8601, local time with offset),
    "end_time" (None until the run ends) and "status" ("running").
    """
    import platform
    import sys

    from frnn_cli import __version__

    argv = list(sys.argv) if argv is None else argv
    return {
        "command": " ".join(["frnn", *argv[1:]]) if argv and argv[0].endswith("frnn") else " ".join(argv),
        "frnn": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "git_commit": git_commit(),
        "seed": seed,
        "start_time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "end_time": None,
        "status": "running",
    }
