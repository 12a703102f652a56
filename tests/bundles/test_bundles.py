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
from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.inference.bundle import config_argument, config_files
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.networks import IMAGENET_GREY, patch_resnet
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.workflow import TrainingError, train_bundle
from tests.conftest import BUNDLES, TINY, use_mlflow_store


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, monkeypatch_module):
    base = tmp_path_factory.mktemp("bundles")
    make_cbis_tree(base / "raw", patients=14, seed=5, size=(128, 100), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(128, 100), workers=1, progress=False)
    make_patches(base / "manifest", base / "patches", size=32, per_roi=3, background=3, workers=1, progress=False)
    for name in ("patch_classifier", "whole_image_classifier"):
        shutil.copytree(BUNDLES / name, base / name)
    use_mlflow_store(monkeypatch_module, base / "mlruns")
    (base / "mlruns").mkdir()
    return base


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def trained(workspace):
    # the paper's three stages, from "ImageNet" weights given as a local file (offline), as a user would
    weights = workspace / "imagenet_like.pth"
    torch.save(patch_resnet("resnet18-narrow", num_classes=1000, in_channels=3).state_dict(), weights)
    three = {
        str(k): {"trainable": t, "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 1}
        for k, t in ((1, ["fc"]), (2, ["layer4", "fc"]), (3, "all"))
    }
    patch = train_bundle(
        workspace / "patch_classifier",
        ["demo.yaml"],
        {**TINY, "dataset_dir": str(workspace / "patches"), "pretrained_weights": str(weights), "stages": three},
    )
    whole = train_bundle(
        workspace / "whole_image_classifier",
        ["demo.yaml"],
        {
            **TINY,
            "batch_size": 4,
            "dataset_dir": str(workspace / "manifest"),
            "image_size": [128, 100],
            "patch_checkpoint": str(workspace / "patch_classifier" / "models" / "model.pt"),
            "stages": {  # the recipe's two stages (the demo overlay has only the first)
                "1": {"trainable": ["top", "fc"], "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 1},
                "2": {"trainable": "all", "learning_rate": 1e-4, "weight_decay": 1e-4, "epochs": 1},
            },
        },
    )
    return patch, whole


@pytest.mark.parametrize("name,data", [("patch_classifier", "patches"), ("whole_image_classifier", "manifest")])
def test_configs_pass_monai_property_checks(workspace, trained, name, data):
    configs = workspace / name / "configs"
    for files, kind in (
        ([configs / "common_train.yaml", configs / "train.yaml", configs / "demo.yaml"], "train"),
        (config_files(workspace / name), "infer"),
    ):
        wf = ConfigWorkflow(
            config_file=[str(f) for f in files],
            workflow_type=kind,
            meta_file=str(workspace / name / "configs" / "metadata.json"),
            logging_file=str(workspace / name / "configs" / "logging.conf"),
            bundle_root=str(workspace / name),
            dataset_dir=str(workspace / data),
            input_dir=str(workspace / "raw"),
        )
        wf.initialize()
        assert not wf.check_properties()  # no missing property (None or an empty list)


def test_every_stage_runs_and_is_one_mlflow_run_nested_under_its_training(workspace, trained):
    patch, whole = trained
    assert [r["stage"] for r in patch] == [1, 2, 3] and [r["stage"] for r in whole] == [1, 2]
    for name, stages in (("patch_classifier", 3), ("whole_image_classifier", 2)):
        assert (workspace / name / "models" / "model.pt").is_file()
        assert all((workspace / name / "models" / f"stage{s}" / "model.pt").is_file() for s in range(1, stages + 1))
        assert all((workspace / name / "models" / f"stage{s}" / "done.json").is_file() for s in range(1, stages + 1))
    client = mlflow.MlflowClient()
    for name, stages in (("patch_classifier", 3), ("whole_image_classifier", 2)):
        exp = client.get_experiment_by_name(name)
        assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow 3 UI: the training runs view
        runs = client.search_runs([exp.experiment_id])
        parents = [r for r in runs if r.data.tags.get("mammo_kind") == "training"]
        children = [r for r in runs if r not in parents]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert sorted(r.data.tags["stage"] for r in children) == [str(s) for s in range(1, stages + 1)]
        assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
        assert len({r.data.tags["training_id"] for r in runs}) == 1
        for run in children:
            assert run.info.status == "FINISHED"
            assert {"learning_rate", "epochs", "data_sha256", "data_rows", "code_version", "started_from"} <= set(
                run.data.params
            )
            assert {"train_loss", "val_acc", "val_auc"} <= set(run.data.metrics)
            assert len(client.get_metric_history(run.info.run_id, "val_acc")) == len(
                client.get_metric_history(run.info.run_id, "train_loss")
            )
            artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"model.pt", "roc.png", "confusion.png", "config"} <= artifacts
            configs = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run.info.run_id, "config")}
            assert {"train.yaml", "demo.yaml", "merged_config.json"} <= configs
            assert (
                run.inputs.dataset_inputs
                and run.inputs.dataset_inputs[0].dataset.digest == run.data.params["data_sha256"]
            )


def test_compare_prints_one_row_per_stage(workspace, trained, capsys):
    assert main(["compare", "--experiment", "patch_classifier"]) == 0
    out = capsys.readouterr().out
    assert out.count("patch_classifier-stage") == 3 and "best_val_acc" in out


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


def test_missing_previous_checkpoint_fails_before_training(workspace, tmp_path):
    fresh = tmp_path / "patch_classifier"
    shutil.copytree(BUNDLES / "patch_classifier", fresh)
    with pytest.raises(TrainingError, match="stage 2.*stage 1 has not finished"):
        train_bundle(fresh, [], {**TINY, "dataset_dir": str(workspace / "patches")}, stages=[2])  # the 3-stage recipe
    assert not (fresh / "models" / "stage2").exists()


def test_label_outside_the_class_list_fails_before_training(workspace, tmp_path):
    fresh = tmp_path / "patch_classifier"
    shutil.copytree(BUNDLES / "patch_classifier", fresh)
    with pytest.raises(TrainingError, match="label outside 0..1"):
        train_bundle(
            fresh, ["demo.yaml"], {**TINY, "dataset_dir": str(workspace / "patches"), "num_classes": 2}, stages=[1]
        )


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


def test_finetune_overlay_runs_only_the_all_layers_stage_from_a_trained_model(workspace, trained, tmp_path):
    bundle = tmp_path / "whole_image_classifier"
    shutil.copytree(BUNDLES / "whole_image_classifier", bundle)
    start = workspace / "whole_image_classifier" / "models" / "model.pt"
    shutil.copytree(
        workspace / "whole_image_classifier" / "models", bundle / "models", ignore=shutil.ignore_patterns("stage*")
    )
    results = train_bundle(
        bundle,
        ["finetune.yaml"],
        {
            **TINY,
            "batch_size": 4,
            "dataset_dir": str(workspace / "manifest"),
            "start_from": str(start),
            "stages#2#epochs": 1,
        },
    )
    assert [r["stage"] for r in results] == [2]
    client = mlflow.MlflowClient()
    run = client.search_runs([client.get_experiment_by_name("whole_image_classifier-finetune").experiment_id])[0]
    assert float(run.data.params["learning_rate"]) == 1e-6 and run.data.params["trainable"] == "all"


def test_the_final_model_is_logged_registered_and_carries_the_bundle_zip(workspace, trained):
    client = mlflow.MlflowClient()
    for name in ("patch_classifier", "whole_image_classifier"):
        versions = client.search_model_versions(f"name = '{name}'")
        assert versions, f"{name} not registered"
        parent = client.get_run(versions[0].run_id)
        assert parent.data.tags["mammo_kind"] == "training"
        assert {a.path for a in client.list_artifacts(parent.info.run_id, "bundle")} == {f"bundle/{name}-0.1.0.zip"}
        model = mlflow.pytorch.load_model(f"models:/{name}/{versions[0].version}")
        info = mlflow.models.get_model_info(f"models:/{name}/{versions[0].version}")
        shape = info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]
        assert shape[1] == 1 and model(torch.rand(1, *shape[1:])).shape[-1] in (2, 5)


def test_imagenet_normalisation_travels_from_the_patch_network_to_the_whole_image_model(workspace, trained):
    for name in ("patch_classifier", "whole_image_classifier"):
        meta = json.loads((workspace / name / "models" / "model_meta.json").read_text())
        assert meta["input_norm"] == list(IMAGENET_GREY)
    from mammo_monai.inference.bundle import build_inference_network

    net = build_inference_network(workspace / "whole_image_classifier")
    assert type(net.backbone.conv1).__name__ == "NormalizedConv2d" and net.backbone.conv1.input_mean == IMAGENET_GREY[0]


def test_training_records_its_stages_and_the_published_checkpoints_figures(workspace, trained):
    patch, whole = trained
    for name, results in (("patch_classifier", patch), ("whole_image_classifier", whole)):
        meta = json.loads((workspace / name / "models" / "model_meta.json").read_text())
        record = meta["training"]
        assert [s["stage"] for s in record["stages"]] == [r["stage"] for r in results]
        assert all(s["epochs"] == 1 for s in record["stages"])
        assert record["key_metric"]["value"] == pytest.approx(results[-1]["best_metric"])
        assert record["key_metric"]["name"] in record["val_metrics"]
        assert "root" not in meta["preprocessing"] and str(workspace) not in json.dumps(meta["preprocessing"])


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
