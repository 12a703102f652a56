"""Resume, never destroy: a real SIGKILL during stage 2, then the same command again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch

from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.workflow import TrainingError, train_bundle
from tests.conftest import BUNDLES, mlflow_store, use_mlflow_store

FROM_SCRATCH = [
    "patch_checkpoint=null",
    "stages#1#trainable=all",
    "arch=resnet10-tiny",
    "batch_size=4",
    "num_workers=0",
    "cache_rate=0.0",
    "image_size=[96,72]",
    "stages#1#epochs=2",
    "stages#2#epochs=4",
]


TWO_STAGES = """# the demo overlay with the recipe's two stages (the demo itself runs only the first)
arch: resnet18-narrow
batch_size: 8
num_workers: 0
lr_schedule: one_cycle
stages:
  '1': {trainable: [top, fc], learning_rate: 1.0e-3, weight_decay: 1.0e-4, epochs: 8}
  '2': {trainable: all, learning_rate: 1.0e-4, weight_decay: 1.0e-4, epochs: 8}
"""


def _copy_bundle(bundle: Path) -> None:
    shutil.copytree(BUNDLES / "whole_image_classifier", bundle)
    (bundle / "configs" / "two_stages.yaml").write_text(TWO_STAGES)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    make_cbis_tree(base / "raw", patients=10, seed=6, size=(96, 72), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(96, 72), workers=1, progress=False)
    return base / "manifest"


def _train_command(bundle: Path, manifest: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mammo_monai.cli",
        "train",
        "--bundle",
        str(bundle),
        "--overlay",
        "two_stages.yaml",
        f"dataset_dir={manifest}",
        *FROM_SCRATCH,
    ]


def test_sigkill_in_stage_2_resumes_there_and_keeps_stage_1(manifest, tmp_path):
    bundle = tmp_path / "whole_image_classifier"
    _copy_bundle(bundle)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store(tmp_path), "PYTHONPATH": str(BUNDLES.parent)}
    stage2 = bundle / "models" / "stage2"
    proc = subprocess.Popen(
        _train_command(bundle, manifest),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while not (stage2 / "last.pt").is_file():  # stage 2 has finished its first epoch
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "stage 2 never finished an epoch"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stage1 = bundle / "models" / "stage1"
    done1 = json.loads((stage1 / "done.json").read_text())
    best1, last1 = _sha(stage1 / "model.pt"), _sha(stage1 / "last.pt")
    assert not (stage2 / "done.json").exists()

    again = subprocess.run(
        _train_command(bundle, manifest), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    results = json.loads(again.stdout[again.stdout.rindex("[\n  {") :])
    assert results[0]["stage"] == 1 and results[0].get("skipped") is True  # finished: not trained again
    assert (_sha(stage1 / "model.pt"), _sha(stage1 / "last.pt")) == (best1, last1)  # never overwritten
    done2 = json.loads((stage2 / "done.json").read_text())
    assert done2["training_id"] == done1["training_id"] and done2["epochs"] == 4
    assert done2["resumed_from_epoch"] >= 1  # at most the interrupted epoch was lost
    assert done2["started_from"] == str(stage1 / "model.pt")
    last2 = torch.load(stage2 / "last.pt", map_location="cpu", weights_only=True)  # the stage's final state
    assert last2["stage"]["training_id"] == done1["training_id"]
    assert last2["trainer"]["iteration"] == 4 * last2["trainer"]["epoch_length"]

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("whole_image_classifier").experiment_id])
    stage_runs = [r for r in runs if r.data.tags.get("stage") == "2"]
    assert len(stage_runs) == 1 and stage_runs[0].data.tags.get("resumed") == "true"  # continued, not duplicated
    assert all(r.info.status == "FINISHED" for r in runs)
    history = client.get_metric_history(stage_runs[0].info.run_id, "val_auc")
    assert sorted(m.step for m in history)[-1] == 4

    # a restart starts a new training and moves the finished stage folders aside
    command = _train_command(bundle, manifest)
    restart = subprocess.run(
        [*command[:4], "--restart", *command[4:], "stages#1#epochs=1", "stages#2#epochs=1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restart.returncode == 0, restart.stderr[-3000:]
    moved = sorted(p.name for p in (bundle / "models").glob("stage1.replaced-*"))
    assert len(moved) == 1 and _sha(bundle / "models" / moved[0] / "model.pt") == best1
    assert json.loads((stage1 / "done.json").read_text())["training_id"] != done1["training_id"]


def test_a_stage_refuses_a_previous_stage_of_another_training(manifest, tmp_path, monkeypatch):
    use_mlflow_store(monkeypatch, tmp_path)
    bundle = tmp_path / "whole_image_classifier"
    _copy_bundle(bundle)
    overrides = {k: v for k, v in (item.split("=", 1) for item in FROM_SCRATCH)}
    overrides = {
        **overrides,
        "patch_checkpoint": None,
        "image_size": [96, 72],
        "stages#1#epochs": 1,
        "stages#2#epochs": 1,
        "batch_size": 4,
        "num_workers": 0,
        "cache_rate": 0.0,
        "dataset_dir": str(manifest),
    }
    train_bundle(bundle, ["two_stages.yaml"], overrides, stages=[1])
    (bundle / "models" / "training.json").write_text(json.dumps({"training_id": "another"}))
    with pytest.raises(TrainingError, match="belongs to training .* not another"):
        train_bundle(bundle, ["two_stages.yaml"], overrides, stages=[2])
    results = train_bundle(bundle, ["two_stages.yaml"], {**overrides, "allow_foreign_checkpoint": True}, stages=[2])
    assert results[0]["stage"] == 2


def test_a_failing_stage_ends_its_mlflow_run_failed(manifest, tmp_path, monkeypatch):
    use_mlflow_store(monkeypatch, tmp_path)
    bundle = tmp_path / "whole_image_classifier"
    _copy_bundle(bundle)
    overrides = {
        "patch_checkpoint": None,
        "stages#1#trainable": "all",
        "arch": "resnet10-tiny",
        "image_size": [96, 72],
        "stages#1#epochs": 1,
        "batch_size": 4,
        "num_workers": 0,
        "cache_rate": 0.0,
        "dataset_dir": str(manifest),
        "loss": {"_target_": "torch.nn.NLLLoss", "weight": "$torch.ones(7)"},
    }  # fails in the first iteration
    with pytest.raises(TrainingError):
        train_bundle(bundle, ["two_stages.yaml"], overrides, stages=[1])
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("whole_image_classifier").experiment_id])
    assert {r.info.status for r in runs} == {"FAILED"} and len(runs) == 2  # the stage and its parent


def test_sigterm_ends_the_stage_and_parent_runs_killed(manifest, tmp_path):
    bundle = tmp_path / "whole_image_classifier"
    _copy_bundle(bundle)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store(tmp_path), "PYTHONPATH": str(BUNDLES.parent)}
    proc = subprocess.Popen(
        [*_train_command(bundle, manifest), "stages#1#epochs=50"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 240
    while not (bundle / "models" / "stage1" / "last.pt").is_file():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) != 0
    err = proc.stderr.read().decode()[-3000:]
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("whole_image_classifier").experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"KILLED"}, err


def test_monai_bundle_run_with_tracking_mlflow_logs_each_metric_once(manifest, tmp_path):
    bundle = tmp_path / "whole_image_classifier"
    _copy_bundle(bundle)
    uri = mlflow_store(tmp_path)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(BUNDLES.parent)}
    args = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        "['configs/common_train.yaml','configs/train.yaml','configs/two_stages.yaml']",
        "--stage",
        "1",
        "--tracking",
        "mlflow",
        "--dataset_dir",
        str(manifest),
        "--tracking_uri",
        uri,
        "--patch_checkpoint",
        "$None",  # fire drops a plain None override
        *[a for item in FROM_SCRATCH[1:] for a in (f"--{item.split('=', 1)[0]}", item.split("=", 1)[1])],
    ]
    done = subprocess.run(args, env=env, cwd=bundle, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("whole_image_classifier").experiment_id])
    stage = [r for r in runs if r.data.tags.get("stage") == "1"]
    assert len(stage) == 1 and len(runs) == 1 + 1  # the stage and its training's parent, nothing else
    run_id = stage[0].info.run_id
    for metric in ("val_acc", "val_auc", "train_loss"):
        steps = [m.step for m in client.get_metric_history(run_id, metric)]
        assert steps == [1, 2], (metric, steps)  # once per epoch: no duplicate, no per-iteration loss mixed in
    configs = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run_id, "config")}
    assert any(c.startswith("config_") and c.endswith(".json") for c in configs), configs  # MONAI's executed config
