"""What the Shen recipe's two trained bundles (``conftest.py``: trained once for this file and
``test_bundles.py``) give: evaluate, predict with heatmaps, export and the exported bundle run by MONAI alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from monai.bundle import ConfigWorkflow

from mammo_monai.cli import main
from mammo_monai.inference.bundle import config_argument, config_files
from mammo_monai.inference.opened_bundle import open_bundle


def test_export_round_trip_gives_the_same_probabilities(workspace, trained, tmp_path):
    bundle = workspace / "whole_image_classifier"
    dicoms = sorted((workspace / "raw" / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"))[:2]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i, d in enumerate(dicoms):
        shutil.copy(d, inputs / f"case{i}.dcm")

    def infer(root, out):
        wf = ConfigWorkflow(
            config_file=config_files(root),
            workflow_type="infer",
            bundle_root=str(root),
            input_dir=str(inputs),
            output_dir=str(out),
            logging_file=str(root / "configs" / "logging.conf"),
        )
        wf.initialize()
        wf.run()
        return pd.read_csv(out / "predictions.csv")

    before = infer(bundle, tmp_path / "before")
    assert main(["export", "--bundle", str(bundle), "--out", str(tmp_path / "dist")]) == 0
    zip_path = tmp_path / "dist" / "whole_image_classifier-0.1.0.zip"
    fresh = open_bundle(zip_path, tmp_path / "fresh").folder
    assert (fresh / "models" / "model.ts").is_file() and not (fresh / "models" / "stage1").exists()
    after = infer(fresh, tmp_path / "after")
    assert len(before) == 2 and before["probability"].between(0, 1).all()
    pd.testing.assert_series_equal(before["probability"], after["probability"])


def test_evaluate_writes_metrics_and_an_mlflow_run(workspace, trained, tmp_path):
    from mammo_monai.inference.evaluate import evaluate

    metrics = evaluate(
        workspace / "whole_image_classifier", workspace / "manifest", split="train", tta=True, out_dir=tmp_path
    )
    assert metrics["tta"] and {"image", "exam_mean", "exam_max"} <= set(metrics)
    assert (
        0 <= metrics["image"]["auc"] <= 1
        and metrics["image"]["n"] == (pd.read_csv(workspace / "manifest" / "images.csv")["split"] == "train").sum()
    )
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "roc.png").is_file()
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("whole_image_classifier-evaluation").experiment_id])
    assert any("image_auc" in r.data.metrics for r in runs)


def test_predict_real_dicoms_with_a_corrupt_file_and_heatmaps(workspace, trained, real_dicoms, tmp_path):
    import nibabel as nib
    import pydicom

    from mammo_monai.inference.predict import predict

    folder = tmp_path / "in"
    folder.mkdir()
    for f in real_dicoms:  # one folder per patient, as the package ships them
        (folder / f.parent.name).mkdir(exist_ok=True)
        shutil.copy(f, folder / f.parent.name / f.name)
    (folder / "corrupt.dcm").write_bytes(real_dicoms[0].read_bytes()[:5000])
    table = predict(
        workspace / "whole_image_classifier",
        [str(folder)],
        tmp_path / "preds.csv",
        tta=True,
        heatmaps=tmp_path / "maps",
        patch_bundle=workspace / "patch_classifier",
        stride=16,
        progress=False,
    )
    images = table[table["level"] == "image"]
    ok = images[images["status"] == "ok"]
    assert len(ok) == 8 and ok["probability"].between(0, 1).all()
    bad = images[images["status"] != "ok"]
    assert len(bad) == 1 and "corrupt.dcm" in bad["status"].iloc[0]
    expected = {
        "1-130": "L",
        "1-131": "L",
        "1-132": "R",
        "1-133": "R",
        "1-280": "L",
        "1-281": "L",
        "1-282": "R",
        "1-283": "R",
    }
    for _, row in ok.iterrows():
        assert row["laterality"] == expected[Path(row["file"]).stem]
    assert (table["level"] == "breast").sum() == 4 and (table["level"] == "exam").sum() == 2  # two patients
    heat_path = next((tmp_path / "maps").glob("*_heatmap.nii.gz"))
    heat, img = nib.load(heat_path), nib.load(str(heat_path).replace("_heatmap.nii.gz", "_image.nii.gz"))
    stored = {(int(ds.Rows), int(ds.Columns)) for ds in map(pydicom.dcmread, real_dicoms)}
    assert heat.shape[2:] == (1, 5) and heat.shape[:2] == img.shape[:2]
    assert heat.shape[:2] in stored  # the DICOM's own grid, not the network's
    assert (heat.affine == img.affine).all()
    probs = heat.get_fdata()
    assert abs(probs.sum(-1) - 1).max() <= 5 * 0.5 / 255 + 1e-6  # five classes in 8-bit steps
    assert len(list((tmp_path / "maps").glob("*_heatmap.png"))) == 8


def test_export_states_the_trained_size_and_logits_and_model_ts_carries_its_metadata(workspace, trained, tmp_path):
    from monai.data import load_net_with_metadata

    zip_path = main(["export", "--bundle", str(workspace / "patch_classifier"), "--out", str(tmp_path)])
    assert zip_path == 0
    fresh = open_bundle(tmp_path / "patch_classifier-0.1.0.zip", tmp_path / "x").folder
    meta = json.loads((fresh / "configs" / "metadata.json").read_text())
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["image"]["spatial_shape"] == [32, 32]  # the patches it was trained on, not the 224 default
    assert fmt["outputs"]["pred"]["type"] == "logits"
    _, ts_meta, extra = load_net_with_metadata(str(fresh / "models" / "model.ts"), more_extra_files=["inference.json"])
    assert ts_meta["network_data_format"]["outputs"]["pred"]["type"] == "logits"
    assert "network_def" in json.loads(extra["inference.json"])


BLOCK_INSTALLED = """
import importlib.machinery, runpy, sys
from pathlib import Path
bundled = str(Path('scripts').resolve())
class OnlyTheBundledCopy:
    # the installed (or editable) mammo_monai is unimportable: only the bundle's scripts/ copy may load
    def find_spec(self, name, path=None, target=None):
        if name != 'mammo_monai':
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, sys.path)  # what the bundle put on the path
        if spec is None or not str(spec.origin).startswith(bundled):
            raise ModuleNotFoundError('mammo_monai is not installed here')
        return spec
sys.meta_path.insert(0, OnlyTheBundledCopy())
sys.argv = ['monai.bundle'] + sys.argv[1:]
runpy.run_module('monai.bundle', run_name='__main__')
"""


def test_an_exported_bundle_runs_with_monai_alone(workspace, trained, tmp_path):
    assert main(["export", "--bundle", str(workspace / "whole_image_classifier"), "--out", str(tmp_path / "dist")]) == 0
    root = open_bundle(tmp_path / "dist" / "whole_image_classifier-0.1.0.zip", tmp_path / "x").folder
    assert (root / "scripts" / "mammo_monai" / "io" / "dicom.py").is_file() and not (
        root / "scripts" / "mammo_monai" / "bundles"
    ).exists()
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    assert "mammo-monai" not in meta["required_packages_version"] and "pydicom" in meta["required_packages_version"]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, d in enumerate(
        sorted((workspace / "raw" / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"))[:2]
    ):
        shutil.copy(d, inputs / f"case{i}.dcm")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_INSTALLED,
            "run",
            "--config_file",
            config_argument(root),
            "--input_dir",
            str(inputs),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert len(table) == 2 and table["probability"].between(0, 1).all()


def test_monai_bundle_load_reads_the_exported_torchscript_with_its_metadata(workspace, trained, tmp_path):
    from monai.bundle import load

    assert main(["export", "--bundle", str(workspace / "whole_image_classifier"), "--out", str(tmp_path / "dist")]) == 0
    open_bundle(tmp_path / "dist" / "whole_image_classifier-0.1.0.zip", tmp_path / "b")
    net, meta, extra = load(
        name="whole_image_classifier", bundle_dir=str(tmp_path / "b"), source="disk", load_ts_module=True
    )
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [128, 100]
    assert net(torch.rand(1, 1, 128, 100)).shape == (1, 2)


def test_evaluate_refuses_a_cache_made_differently_from_the_training_data(workspace, trained, tmp_path):
    from mammo_monai.data.cache_record import CacheMismatchError
    from mammo_monai.inference.evaluate import evaluate

    manifest = tmp_path / "manifest"
    shutil.copytree(workspace / "manifest", manifest)
    record = json.loads((manifest / "cache.json").read_text())
    (manifest / "cache.json").write_text(json.dumps({**record, "keep_aspect": True}))
    with pytest.raises(CacheMismatchError, match="keep_aspect: model False, data True"):
        evaluate(workspace / "whole_image_classifier", manifest, split="test", track=False, out_dir=tmp_path / "e")
