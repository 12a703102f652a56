"""Locks that let several processes (two ``prepare`` runs, a ``prepare`` beside a training job) share one
download cache (:mod:`mammo_monai.io.remote`) through ``filelock``'s operating-system locks, which the
system releases when a process dies, so a crash never leaves the cache locked:

- ``locks/<key>.lock``, one per entry: held while a file is checked, downloaded and linked, so a second
  process that wants the same file says once that it waits, waits, and then reuses it instead of writing
  the same partial file;
- ``cache.lock``, one for the cache: held while blobs are evicted, renamed into place or indexed, and while
  a process pins the blobs it is about to link;
- ``pins/<token>.txt`` with ``pins/<token>.lock``: the blobs one running process uses, held for the whole
  run (a ``DownloadCache.session``: ``prepare`` holds it until every image is read); eviction by any process leaves them alone. A pin whose lock nobody holds belongs to a process that
  ended without removing it and is cleared by the next eviction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


def entry_lock(folder: Path, key: str) -> FileLock:
    """The lock of one cache entry (a remote file's ``key``)."""
    (folder / "locks").mkdir(parents=True, exist_ok=True)
    return FileLock(folder / "locks" / f"{key}.lock")


@contextmanager
def held(lock: FileLock, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold ``lock``; when another process holds it, call ``on_wait`` (to say so) before waiting for it."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def cache_lock(folder: Path) -> FileLock:
    """The cache-wide lock (eviction, renames into ``blobs/``, the index, pins). Never nest two of these
    in one process: a second lock object on the same file waits for the first."""
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / "cache.lock")


class Pin:
    """This process's claim on the blobs it is about to link; a context manager for one run.

    Args:
        folder: the cache folder.
    """

    def __init__(self, folder: Path) -> None:
        token = uuid.uuid4().hex
        self.shas: set[str] = set()
        self.path = folder / "pins" / f"{token}.txt"
        self.lock = FileLock(folder / "pins" / f"{token}.lock")

    def __enter__(self) -> Pin:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        self.path.touch()  # only after the lock is held: a pin file without a holder is stale
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
        self.lock.release()
        Path(self.lock.lock_file).unlink(missing_ok=True)

    def add(self, shas: set[str]) -> None:
        """Pin more blobs (call it holding :func:`cache_lock`, which eviction holds while it reads pins)."""
        new = set(shas) - self.shas
        if new:
            with open(self.path, "a") as fh:
                fh.writelines(f"{sha}\n" for sha in sorted(new))
            self.shas |= new


def pinned(folder: Path) -> set[str]:
    """The SHA-256s of the blobs that running processes have pinned; stale pins are removed on the way.
    Call it holding :func:`cache_lock`."""
    shas: set[str] = set()
    for path in (folder / "pins").glob("*.txt"):
        lock = FileLock(path.with_suffix(".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:  # held: a live run (this process's own included)
            try:
                shas |= set(path.read_text().split())
            except FileNotFoundError:  # that run has just ended
                pass
            continue
        path.unlink(missing_ok=True)
        lock.release()
        path.with_suffix(".lock").unlink(missing_ok=True)
    return shas
