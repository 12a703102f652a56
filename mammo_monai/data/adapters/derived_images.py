"""Where adapters write images they derive from a dataset's files (a tomosynthesis slice, a JPEG made
lossless PNG), so that every manifest ``image`` is a 2-D file the package's readers open.

Default folder: ``$XDG_CACHE_HOME/mammo-monai/derived/<dataset>/<hash of the dataset root>`` (``~/.cache``
without ``XDG_CACHE_HOME``): the dataset's own folder is never written to. A derived file is remade
when its source is newer; it is written under a temporary name and renamed (:mod:`mammo_monai.io.atomic`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def derived_dir(dataset: str, root: str | os.PathLike, override: str | os.PathLike | None = None) -> Path:
    """The folder for ``dataset``'s derived images of ``root`` (``override`` when given), created."""
    if override:
        folder = Path(override)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mammo-monai" / "derived"
        key = hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:12]
        folder = base / dataset / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def is_fresh(derived: Path, source: Path) -> bool:
    """True when ``derived`` exists and is not older than ``source``."""
    try:
        return derived.stat().st_mtime >= source.stat().st_mtime
    except OSError:
        return False
