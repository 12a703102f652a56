"""Write files so that a crash never leaves a half-written one: temporary name, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The file gets the permissions a plain ``open(path, "w")`` would give (0666 less the umask), not the
    owner-only 0600 of a temporary file, so outputs stay readable by the group and other users."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """``table.to_csv(path, index=False)``, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_json(data: Any, path: str | os.PathLike) -> None:
    """JSON (indented; unknown types as strings), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str))
