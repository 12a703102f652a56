"""Write files so that a crash never leaves a half-written one: temporary name, then rename.

The temporary is ``.<name>.<random>-pid<pid>.part`` beside the output, so that a later run can tell the
leftovers of a killed run (:func:`remove_stale_parts`) from the temporaries of one still writing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.io.errors import WriteError

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
# ".x.png.k3j2h1g0-pid4242.part": written by process 4242; ".x.png.k3j2h1g0.part": by versions before the pid
_PART = re.compile(r"^\..+\.[a-z0-9_]{8}(?:-pid(?P<pid>\d+))?\.part$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The file gets the permissions a plain ``open(path, "w")`` would give (0666 less the umask), not the
    owner-only 0600 of a temporary file, so outputs stay readable by the group and other users.

    Raises:
        WriteError: an ``OSError`` while writing (a full disk, a read-only folder), re-raised naming
            ``path`` rather than the temporary, with its ``errno``.
    """
    path = Path(path)
    tmp = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"-pid{os.getpid()}{PART_SUFFIX}", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except WriteError:
        raise
    except OSError as err:
        if err.filename not in (None, tmp, str(path)):
            raise  # about another file (an input the writer read): its own error names it
        raise WriteError(err.errno, err.strerror or str(err), str(path)) from err
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def _alive(pid: int) -> bool:
    """True when a process ``pid`` runs on this machine (or may: one of another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def remove_stale_parts(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed runs left in ``folder`` (not below it); returns them.

    A temporary of :func:`atomic_path` is stale when the process named in it no longer runs on this
    machine or is the caller itself (call it before writing: a container's restarted process often gets
    the killed one's pid); one without a process id comes from an older version of this package.
    Temporaries of a run still writing are left alone.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder yet, or unreadable: nothing of ours to clean
        return removed
    for entry in entries:
        match = _PART.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        pid = None if match["pid"] is None else int(match["pid"])
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue  # a run still writing; our own pid here is a killed run's, reused (containers restart pids)
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except FileNotFoundError:  # its writer finished meanwhile
            pass
    if removed:
        logger.info("%s: removed %d temporary file(s) left by an interrupted run", folder, len(removed))
    return removed


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """``table.to_csv(path, index=False)``, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_json(data: Any, path: str | os.PathLike) -> None:
    """JSON (indented; unknown types as strings), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str))
