"""Walk a folder tree for files, reporting what cannot be walked instead of skipping it silently."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def walk_files(root: str | os.PathLike, errors: list[dict[str, str]],
               keep: Callable[[str], bool] | None = None) -> list[Path]:
    """Every file below ``root`` (sorted), following folder symlinks once; hidden names (``.x``, and
    the ``._x.dcm`` resource forks macOS leaves beside copied files) are left out.

    Problems become rows of ``errors`` instead of being skipped silently: a folder that cannot be
    read (``os.walk``'s ``onerror``), a symlink that leads back to a folder above it (a loop) or to
    a folder already read, and a broken file symlink.

    Args:
        root: the folder to walk.
        errors: list the ``{"file", "reason"}`` rows are appended to.
        keep: optional filter on the file name (e.g. ``lambda n: n.lower().endswith(".dcm")``).
    """

    def unreadable(err: OSError) -> None:
        errors.append({"file": str(err.filename or root), "reason": f"folder cannot be read ({err.strerror or err}); skipped"})

    seen = {os.path.realpath(root)}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        here = os.path.realpath(dirpath)
        for name in sorted(dirnames):
            if name.startswith("."):
                dirnames.remove(name)
                continue
            sub = os.path.join(dirpath, name)
            real = os.path.realpath(sub)
            link = os.path.islink(sub)
            if link and (here == real or here.startswith(real.rstrip(os.sep) + os.sep)):
                errors.append({"file": sub, "reason": f"symlink loop: points back to {real}; not followed"})
            elif real in seen:
                if link:
                    errors.append({"file": sub, "reason": f"symlink to a folder already read ({real}); not read twice"})
            else:
                seen.add(real)
                continue
            dirnames.remove(name)
        dirnames.sort()
        for name in filenames:
            if name.startswith(".") or (keep is not None and not keep(name)):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.exists(path):
                errors.append({"file": path, "reason": "broken symlink; skipped"})
                continue
            found.append(Path(path))
    return sorted(found)
