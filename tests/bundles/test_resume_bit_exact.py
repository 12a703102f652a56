"""A stage killed (SIGKILL) mid-way and resumed ends with the weights of an uninterrupted one, bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree
from tests.conftest import BUNDLES, mlflow_store

# the patch recipe from scratch on 48 px patches, with its random augmentation and class balancing
# (the transforms' and the sampler's own generators), cached in memory, read in the training process
TINY = [
    "arch=resnet10-tiny",
    "pretrained_weights=null",
    "stages#1#trainable=all",
    "stages#1#epochs=2",
    "batch_size=8",
    "num_workers=0",
    "cache_rate=1.0",
    "balance=true",
]


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    base = tmp_path_factory.mktemp("bit_exact")
    make_cbis_tree(base / "raw", patients=10, seed=6, size=(96, 72), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(96, 72), workers=1, progress=False)
    make_patches(base / "manifest", base / "patches", size=48, per_roi=3, background=3, workers=1, progress=False)
    return base / "patches"


def _train(bundle: Path, patches: Path) -> list[str]:
    command = ["train", "--bundle", str(bundle), "--stages", "1", f"dataset_dir={patches}", *TINY]
    return [sys.executable, "-m", "mammo_monai.cli", *command]


def _networks(stage: Path) -> dict[str, dict[str, torch.Tensor]]:
    last = torch.load(stage / "last.pt", map_location="cpu", weights_only=True)
    return {
        "last.pt": last["network"],
        "model.pt": torch.load(stage / "model.pt", map_location="cpu", weights_only=True),
    }


def _env(folder: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store(folder), "PYTHONPATH": str(BUNDLES.parent)}


def test_a_killed_and_resumed_stage_ends_bit_identical_to_an_uninterrupted_one(patches, tmp_path):
    whole, killed = tmp_path / "whole" / "patch_classifier", tmp_path / "killed" / "patch_classifier"
    for bundle in (whole, killed):
        shutil.copytree(BUNDLES / "patch_classifier", bundle, ignore=shutil.ignore_patterns("models", "eval"))
    log = (tmp_path / "reference.log").open("w")
    reference = subprocess.Popen(  # the uninterrupted run, beside the one that is killed
        _train(whole, patches), env=_env(whole.parent), cwd=whole.parent, stdout=subprocess.DEVNULL, stderr=log
    )
    stage = killed / "models" / "stage1"
    proc = subprocess.Popen(
        _train(killed, patches),
        env=_env(killed.parent),
        cwd=killed.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not (stage / "last.pt").is_file():  # the first epoch is done: kill the process group in the second
        assert proc.poll() is None, "the training to kill ended early"
        assert time.time() < deadline, "the stage never finished an epoch"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (stage / "done.json").exists()  # killed mid-stage

    again = subprocess.run(
        _train(killed, patches), env=_env(killed.parent), cwd=killed.parent, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-3000:]
    record = json.loads((stage / "done.json").read_text())
    assert record["epochs"] == 2 and record["resumed_from_epoch"] == 1  # epoch 2 ran again after the resume
    assert reference.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    expected, got = _networks(whole / "models" / "stage1"), _networks(stage)
    for name, tensors in expected.items():
        assert tensors.keys() == got[name].keys()
        different = [k for k, t in tensors.items() if not torch.equal(t, got[name][k])]
        assert not different, f"{name}: {len(different)} tensors differ after the resume, e.g. {different[:3]}"
