"""Segment-then-classify, stages 1-3: self-supervised encoder and autoencoder, then a lesion segmenter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import nibabel as nib
import pandas as pd
import pydicom
import pytest
import torch
from monai.bundle import ConfigWorkflow

import tests.conftest as conftest
from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.inference.bundle import config_argument
from mammo_monai.inference.evaluate import evaluate
from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.predict import predict
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.workflow import train_bundle
from tests.conftest import BUNDLES, use_mlflow_store

SIZE = (128, 96)
STAGES = {k: {"trainable": "all", "learning_rate": 1e-3, "weight_decay": 0.0, "epochs": 2} for k in ("1", "2", "3")}
TINY = {**conftest.TINY, "batch_size": 4}  # the shared tiny loading, 4 images a batch


def _monai_bundle_run(bundle: Path, config_file: str, *args: str) -> None:
    """``python -m monai.bundle run`` from inside ``bundle``, as a user would; fails the test on error."""
    done = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_file, *args],
        cwd=bundle,
        env={**os.environ, "PYTHONPATH": str(BUNDLES.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("lesions")
    make_cbis_tree(base / "raw", patients=12, seed=4, size=(128, 100), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=SIZE, workers=1, progress=False)
    shutil.copytree(BUNDLES / "lesion_segmentation", base / "lesion_segmentation")
    mp = pytest.MonkeyPatch()
    use_mlflow_store(mp, base)
    result = train_bundle(
        base / "lesion_segmentation", ["demo.yaml"], {**TINY, "dataset_dir": str(base / "manifest"), "stages": STAGES}
    )
    yield base, result
    mp.undo()


def test_three_stages_each_one_mlflow_run_and_the_right_objective(trained):
    base, result = trained
    assert [r["stage"] for r in result] == [1, 2, 3]
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("lesion_segmentation").experiment_id])
    stages = {r.data.tags.get("stage"): r for r in runs if r.data.tags.get("stage")}
    assert set(stages) == {"1", "2", "3"} and all(r.info.status == "FINISHED" for r in stages.values())
    assert {"val_l1"} <= set(stages["1"].data.metrics) and {"val_l1"} <= set(stages["2"].data.metrics)
    assert {"val_dice", "val_froc", "val_froc_fp1"} <= set(stages["3"].data.metrics)
    for stage in ("1", "2"):  # a per-pixel reconstruction error of images in [0, 1]
        assert 0 < stages[stage].data.metrics["val_l1"] < 1


def test_each_stage_starts_from_the_previous_one(trained):
    base, _ = trained
    models = base / "lesion_segmentation" / "models"
    s1, s2, s3 = (torch.load(models / f"stage{i}" / "model.pt", weights_only=True) for i in (1, 2, 3))
    assert "head.0.weight" in s1 and "upcat_1.convs.conv_0.conv.weight" in s2 and s3["final_conv.weight"].shape[0] == 2
    done = [json.loads((models / f"stage{i}" / "done.json").read_text()) for i in (2, 3)]
    assert done[0]["started_from"].endswith("stage1/model.pt") and done[1]["started_from"].endswith("stage2/model.pt")
    meta = json.loads((models / "model_meta.json").read_text())
    assert meta["stage"] == 3 and meta["arch"] == "unet-tiny" and meta["image_size"] == list(SIZE)


def test_config_passes_monai_property_checks_for_every_stage(trained, tmp_path):
    base, _ = trained
    configs = base / "lesion_segmentation" / "configs"
    for stage in (1, 3):
        wf = ConfigWorkflow(
            config_file=[str(configs / "common_train.yaml"), str(configs / "train.yaml"), str(configs / "demo.yaml")],
            workflow_type="train",
            meta_file=str(configs / "metadata.json"),
            logging_file=str(configs / "logging.conf"),
            bundle_root=str(tmp_path / f"b{stage}"),
            dataset_dir=str(base / "manifest"),
            stage=stage,
            ssl_pretraining=False,
            **TINY,
        )
        wf.initialize()
        assert not wf.check_properties()


def test_the_ablation_runs_stage_3_alone_from_scratch(trained, tmp_path):
    base, _ = trained
    bundle = tmp_path / "lesion_segmentation"
    shutil.copytree(BUNDLES / "lesion_segmentation", bundle)
    result = train_bundle(
        bundle,
        ["demo.yaml"],
        {
            **TINY,
            "dataset_dir": str(base / "manifest"),
            "stages": {"3": STAGES["3"]},
            "ssl_pretraining": False,
            "labelled_fraction": 0.5,
        },
    )
    assert [r["stage"] for r in result] == [3]
    done = json.loads((bundle / "models" / "stage3" / "done.json").read_text())
    assert not done.get("started_from")


def test_inference_config_writes_lesion_maps_and_candidates_and_the_bundle_exports(trained, tmp_path):
    base, _ = trained
    bundle = base / "lesion_segmentation"
    images = pd.read_csv(base / "manifest" / "images.csv")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for src in sorted((base / "raw" / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"))[:2]:
        shutil.copy(src, inputs / f"{src.parts[-4]}.dcm")
    out = tmp_path / "maps"
    _monai_bundle_run(bundle, config_argument(bundle), "--input_dir", str(inputs), "--output_dir", str(out))
    maps = sorted(out.glob("*_lesion.nii.gz"))
    stored = {nib.load(m).shape for m in maps}  # on each DICOM's own grid, not the network's
    assert len(maps) == 2 and stored == {pydicom.dcmread(f).pixel_array.shape for f in sorted(inputs.glob("*.dcm"))}
    prob = nib.load(maps[0]).get_fdata()
    assert 0 <= prob.min() and prob.max() <= 1
    table = pd.read_csv(out / "candidates.csv")
    assert list(table.columns[:3]) == ["file", "candidate", "score"] and len(images) > 0
    assert export_bundle(bundle, tmp_path / "dist").is_file()


@pytest.fixture(scope="module")
def patch_bundle(trained):
    base, _ = trained
    make_patches(base / "manifest", base / "patches", size=32, per_roi=3, background=3, workers=1, progress=False)
    shutil.copytree(BUNDLES / "patch_classifier", base / "patch_classifier")
    stages = {"1": {"trainable": "all", "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 1}}
    train_bundle(
        base / "patch_classifier", ["demo.yaml"], {**TINY, "dataset_dir": str(base / "patches"), "stages": stages}
    )
    return base / "patch_classifier"


def test_segment_then_classify_evaluates_and_predicts_with_lesion_maps(trained, patch_bundle, tmp_path):
    base, _ = trained
    bundle = base / "lesion_segmentation"
    with pytest.raises(ValueError, match="declares segment_then_classify: run it with --patch-bundle"):
        evaluate(bundle, base / "manifest", track=False, out_dir=tmp_path / "e0")
    metrics = evaluate(bundle, base / "manifest", patch_bundle=patch_bundle, track=False, out_dir=tmp_path / "e")
    images = pd.read_csv(base / "manifest" / "images.csv")
    assert metrics["image"]["n"] == int((images["split"] == "test").sum())
    scores = pd.read_csv(tmp_path / "e" / "predictions.csv")["probability"]
    assert scores.between(0, 1).all()
    dicoms = sorted((base / "raw" / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"))[:2]
    table = predict(
        bundle,
        [str(d) for d in dicoms],
        tmp_path / "p.csv",
        patch_bundle=patch_bundle,
        heatmaps=tmp_path / "maps",
        progress=False,
    )
    assert (table.loc[table["level"] == "image", "status"] == "ok").all()
    assert len(list((tmp_path / "maps").glob("*_heatmap.nii.gz"))) == 2
    candidates = list((tmp_path / "maps").glob("*_candidates.csv"))
    assert len(candidates) == 2 and "malignancy" in pd.read_csv(candidates[0]).columns


def test_evaluate_config_scores_the_segmenter_on_the_test_split(trained):
    base, _ = trained
    bundle = base / "lesion_segmentation"
    _monai_bundle_run(bundle, config_argument(bundle, "evaluate"), "--dataset_dir", str(base / "manifest"))
    metrics = dict(line.split(",") for line in (bundle / "eval" / "test" / "metrics.csv").read_text().split())
    assert 0 <= float(metrics["val_dice"]) <= 1 and "val_froc_fp1" in metrics
