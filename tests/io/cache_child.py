"""What each process of ``test_remote_locking.py`` runs: a module of its own, so that a spawned process
imports only this and the download cache (not the readers of ``mammo_monai.io``, which import torch and
MONAI: seconds per process)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path


def _cache_module():
    if "mammo_monai.io" not in sys.modules:  # the package without its __init__ (readers, torch, MONAI)
        io = types.ModuleType("mammo_monai.io")
        io.__path__ = [str(Path(importlib.util.find_spec("mammo_monai").origin).parent / "io")]
        sys.modules["mammo_monai.io"] = io
    from mammo_monai.io import remote

    return remote


def fetch(folder: str, url: str, start, out: str) -> None:
    """Wait at the barrier ``start`` for the other process, fetch ``url`` into the cache ``folder``, and
    write what the cache did to the JSON file ``out``."""
    cache = _cache_module().DownloadCache(Path(folder))
    start.wait(timeout=60)
    tree = cache.local_root(url)
    Path(out).write_text(json.dumps({"stats": cache.stats, "tree": str(tree)}))
