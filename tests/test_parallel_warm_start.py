"""``prepare`` with workers starts their fork server before it imports torch itself, so the two imports
(about 6 s of CPU each) run on two cores at once: the server's import, waited for after the parent's,
was why a second worker gained nothing (issue 19)."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mammo_monai.data.cache import cache_image

# Runs in a fresh interpreter: records, at the parent's first import of torch, whether the fork server was
# already running and which modules it was told to preload; then runs the real command.
PROBE = """
import importlib.abc, json, sys
from multiprocessing import forkserver

seen = {}

class FirstTorchImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            server = forkserver._forkserver
            seen.update(running=server._forkserver_pid is not None, preload=list(server._preload_modules))
        return None

sys.meta_path.insert(0, FirstTorchImport())
from mammo_monai.cli import main

rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, **seen}))
"""


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here")
def test_prepare_starts_the_workers_fork_server_before_importing_torch(tmp_path):
    yy, xx = np.mgrid[:32, :24]
    tissue = ((yy - 16) / 14.0) ** 2 + (xx / 17.0) ** 2 <= 1
    for cls in ("neg", "pos"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray((tissue * (90 + 10 * i)).astype(np.uint8)).save(tmp_path / "images" / cls / f"{cls}{i}.png")
    args = ["prepare", "--dataset", "folder", "--root", str(tmp_path / "images"), "--out", str(tmp_path / "m")]
    args += ["--size", "32", "24", "--workers", "2", "--quiet"]
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["rc"] == 0 and (tmp_path / "m" / "images.csv").is_file()
    assert seen["running"], "the fork server started only after this process had imported torch"
    assert cache_image.__module__ in seen["preload"]  # the server preloads the module the workers run
