"""The Shen recipe's two bundles trained on a tiny synthetic CBIS-DDSM (once, in ``conftest.py``): every
stage run and tracked in MLflow, the configs checked by MONAI, training refused on bad input, fine-tuning, the
registered model. What the trained bundles give (evaluate, predict, export) is in ``test_bundles_outputs.py``."""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest
import torch
from monai.bundle import ConfigWorkflow

from mammo_monai.cli import main
from mammo_monai.inference.bundle import config_files
from mammo_monai.networks import IMAGENET_GREY
from mammo_monai.training.workflow import TrainingError, train_bundle
from tests.conftest import BUNDLES, TINY


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
