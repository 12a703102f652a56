"""Multi-process training: a two-stage whole-image training under ``torchrun --nproc_per_node 2`` (gloo,
CPU) with ``multi_gpu_train.yaml``, checked against the same stage trained in one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import WeightedRandomSampler

from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.distributed import ShardedSampler, shard
from tests.conftest import BUNDLES, mlflow_store

# Stage 1 really trains (every layer, BatchNorm statistics move, gradients averaged over the ranks) for
# one epoch, so its best checkpoint is the network of its only validation. Stage 2 trains the fc layer
# with learning rate 0: every BatchNorm layer is frozen (kept in eval mode) and no weight moves, so the
# network it validates each epoch is exactly the stage-1 checkpoint, whatever batches each rank drew,
# and with patience 1 early stopping must end it after epoch 2 of 3 (the score does not improve).
TINY = """\
patch_checkpoint: null
arch: resnet10-tiny
batch_size: 2
num_workers: 0
cache_rate: 0.0
image_size: [96, 72]
bf16: false
early_stop_patience: 1
stages:
  '1': {trainable: all, learning_rate: 1.0e-3, weight_decay: 1.0e-4, epochs: 1}
  '2': {trainable: [fc], learning_rate: 0.0, weight_decay: 1.0e-4, epochs: 3}
"""
# Loaded by every process of the runs (PYTHONPATH): each torchrun worker notes the files it writes
# with torch.save or os.replace (every checkpoint, done.json and run.json are written one of these ways).
WRITE_LOG_HOOK = """\
import os
if os.environ.get("MAMMO_WRITE_LOG") and os.environ.get("RANK") is not None:
    import torch

    _log = os.environ["MAMMO_WRITE_LOG"] + "." + os.environ["RANK"]
    _save, _replace = torch.save, os.replace

    def _note(path):
        with open(_log, "a") as f:
            f.write(os.path.abspath(os.fspath(path)) + "\\n")

    def _logged_save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)):
            _note(f)
        return _save(obj, f, *args, **kwargs)

    def _logged_replace(src, dst, *args, **kwargs):
        _note(dst)
        return _replace(src, dst, *args, **kwargs)

    torch.save, os.replace = _logged_save, _logged_replace
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """16 synthetic patients; the test patients join validation and one validation image is dropped, so
    9 validation images: an odd count that 2 ranks share unevenly (5 + 4) without padding."""
    base = tmp_path_factory.mktemp("distributed")
    make_cbis_tree(base / "raw", patients=16, seed=6, size=(96, 72), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(96, 72), workers=1, progress=False)
    table = base / "manifest" / "images.csv"
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    df.loc[df["split"] == "test", "split"] = "val"
    df = df.drop(index=df.index[df["split"] == "val"][-1])
    assert (df["split"] == "val").sum() % 2 == 1
    df.to_csv(table, index=False)
    return base / "manifest"


def _run_stage(bundle: Path, manifest: Path, stage: int, env: dict[str, str], processes: int) -> None:
    """One stage as the model card documents it: ``torchrun ... -m monai.bundle run`` with the
    multi-process overlay, or a plain ``python -m monai.bundle run`` without it."""
    configs = ["configs/common_train.yaml", "configs/train.yaml", "configs/tiny.yaml"]
    launcher = [sys.executable]
    if processes > 1:
        configs.append("configs/multi_gpu_train.yaml")
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*launcher, "-m", "monai.bundle", "run", "--config_file", repr(configs)]
    command += ["--stage", str(stage), "--dataset_dir", str(manifest)]
    done = subprocess.run(command, cwd=bundle, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def _env(tmp_path: Path, db: str) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(WRITE_LOG_HOOK)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_store(tmp_path, db),
        "PYTHONPATH": os.pathsep.join([str(hook), str(BUNDLES.parent)]),
        "MAMMO_WRITE_LOG": str(tmp_path / "writes"),
        "OMP_NUM_THREADS": "1",  # what torchrun gives each worker: the same kernels in both runs
    }


def _metrics(tracking_uri: str, stage: int) -> tuple[dict[str, list[float]], str]:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("whole_image_classifier")
    (run,) = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("stage") == str(stage)]
    history = {
        name: [m.value for m in sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)]
        for name in ("val_auc", "val_acc")
    }
    return history, run.info.run_id


def _validation(bundle: Path, stage: int) -> tuple[np.ndarray, np.ndarray]:
    """The last validation's P(malignant) and labels (gathered over the ranks), sorted by probability."""
    saved = np.load(bundle / "eval" / f"stage{stage}" / "last_validation.npz")
    order = np.argsort(saved["probs"][:, 1], kind="stable")
    return saved["probs"][order, 1], saved["labels"][order]


def test_two_processes_train_two_stages_like_one(manifest, tmp_path):
    """Under torchrun (2 processes, gloo): exit 0 for both stages; one MLflow run per stage plus the
    parent, all written by rank 0; one training id everywhere; rank 1 writes no file of the bundle.

    The metrics are compared where data parallelism must not change them. Stage 2 (learning rate 0,
    BatchNorm frozen: the network is fixed) is also trained in one process from the same stage-1
    checkpoint: its per-epoch validation AUC and accuracy, gathered over the ranks, equal the
    single-process ones, and both stop early after the same epoch. The 9 validation probabilities
    of stage 1 (where the ranks' BatchNorm statistics drift apart in training) equal those of its saved
    checkpoint validated in one process: every image counted once, and the validated network is the
    one rank 0 saved. A tolerance of 1e-5 covers batch-size dependent float rounding."""
    bundle = tmp_path / "whole_image_classifier"
    shutil.copytree(BUNDLES / "whole_image_classifier", bundle)
    (bundle / "configs" / "tiny.yaml").write_text(TINY)
    env = _env(tmp_path, "mlflow.db")

    _run_stage(bundle, manifest, 1, env, processes=2)
    single = tmp_path / "single" / "whole_image_classifier"  # stage 2 in one process, from the same stage 1
    shutil.copytree(bundle, single)
    _run_stage(bundle, manifest, 2, env, processes=2)
    _run_stage(single, manifest, 2, {**env, "MLFLOW_TRACKING_URI": mlflow_store(tmp_path, "single.db")}, 1)

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("whole_image_classifier").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("mammo_kind") == "training"]
    stage_runs = sorted((r for r in runs if r.data.tags.get("stage")), key=lambda r: r.data.tags["stage"])
    assert len(runs) == 3 and [r.data.tags["stage"] for r in stage_runs] == ["1", "2"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in stage_runs)
    assert all(r.info.status == "FINISHED" for r in runs)

    tid = json.loads((bundle / "models" / "training.json").read_text())["training_id"]
    for stage in (1, 2):
        folder = bundle / "models" / f"stage{stage}"
        assert json.loads((folder / "done.json").read_text())["training_id"] == tid
        assert json.loads((folder / "run.json").read_text())["training_id"] == tid
    assert {r.data.tags["training_id"] for r in runs} == {tid}

    logs = {rank: Path(f"{env['MAMMO_WRITE_LOG']}.{rank}") for rank in (0, 1)}
    writes = {rank: log.read_text().split() if log.is_file() else [] for rank, log in logs.items()}
    assert not [w for w in writes[1] if w.startswith(str(bundle))]  # rank 1 wrote nothing of the bundle
    for stage in (1, 2):
        for name in ("model.pt", "last.pt", "done.json", "run.json"):
            assert str(bundle / "models" / f"stage{stage}" / name) in writes[0]

    two, _ = _metrics(env["MLFLOW_TRACKING_URI"], 2)
    one, _ = _metrics(mlflow_store(tmp_path, "single.db"), 2)
    assert len(two["val_auc"]) == len(one["val_auc"]) == 2  # early stopping: epoch 2 of 3, on every rank
    for name in ("val_auc", "val_acc"):
        np.testing.assert_allclose(two[name], one[name], atol=1e-5)
    assert json.loads((bundle / "models" / "stage2" / "done.json").read_text())["epochs"] == 2

    n_val = (pd.read_csv(manifest / "images.csv")["split"] == "val").sum()
    stage1_probs, stage1_labels = _validation(bundle, 1)
    single_probs, single_labels = _validation(single, 2)
    assert len(stage1_probs) == len(single_probs) == n_val  # gathered, no image padded in twice
    np.testing.assert_allclose(stage1_probs, single_probs, atol=1e-5)
    np.testing.assert_array_equal(stage1_labels, single_labels)
    np.testing.assert_allclose(_validation(bundle, 2)[0], single_probs, atol=1e-5)


def test_sharded_sampler_gives_each_rank_its_share_of_one_weighted_draw():
    """Class balancing under torchrun: every rank draws the same weighted sequence (same seed) and keeps
    every second index, so the ranks together train on exactly the single-process draw (padded to even)."""

    def draw() -> WeightedRandomSampler:
        return WeightedRandomSampler([0.1] * 6 + [0.9] * 5, 11, generator=torch.Generator().manual_seed(0))

    full = list(draw())
    shards = [list(ShardedSampler(draw(), 2, rank)) for rank in (0, 1)]
    assert [len(s) for s in shards] == [6, 6]
    assert [i for pair in zip(*shards) for i in pair] == full + full[:1]
    assert shard(None, list(range(11))) is None  # one process: the single-process sampler, untouched


def test_mammo_monai_train_under_torchrun_is_one_training(manifest, tmp_path):
    """``torchrun ... -m mammo_monai.cli train``: every stage in one launch; rank 0 decides the training id
    and the finished stages between stages, so both ranks train the same training and MLflow holds one
    parent with its two stages. A second launch skips both finished stages."""
    bundle = tmp_path / "whole_image_classifier"
    shutil.copytree(BUNDLES / "whole_image_classifier", bundle)
    (bundle / "configs" / "tiny.yaml").write_text(TINY.replace("epochs: 3", "epochs: 1"))
    env = _env(tmp_path, "cli.db")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "mammo_monai.cli",
        "train",
        "--bundle",
        str(bundle),
        "--overlay",
        "tiny.yaml",
        "--overlay",
        "multi_gpu_train.yaml",
        f"dataset_dir={manifest}",
    ]
    for _ in range(2):
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    tid = json.loads((bundle / "models" / "training.json").read_text())["training_id"]
    assert {json.loads((bundle / "models" / f"stage{s}" / "done.json").read_text())["training_id"] for s in (1, 2)} == {
        tid
    }
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("whole_image_classifier").experiment_id])
    assert sorted(r.data.tags.get("stage", "parent") for r in runs) == ["1", "2", "parent"]
    assert {r.data.tags.get("training_id") for r in runs} == {tid}
    assert not list((bundle / "models").glob("stage*.replaced-*"))  # the rerun skipped, it moved nothing aside
