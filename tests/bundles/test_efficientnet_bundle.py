"""The EfficientNet recipe as a bundle: trained from a folder of class sub-folders through the folder
adapter, BCE on one logit, NAdam, ReduceLROnPlateau and early stopping on the validation loss, one MLflow
run, MONAI's property checks, export and predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from monai.bundle import ConfigWorkflow
from PIL import Image

import tests.conftest as conftest
from mammo_monai.data.prepare import prepare
from mammo_monai.inference.bundle import build_inference_network, config_files
from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.predict import predict
from mammo_monai.training.workflow import train_bundle
from mammo_monai.transforms import eval_transforms
from tests.conftest import BUNDLES, use_mlflow_store

NAME = "efficientnet_classifier"
SIZE = (64, 64)
#: images per class and split, about the recipe's 70 / 20 / 10
COUNTS = {"train": 10, "val": 3, "test": 2}
TINY = {  # the shared tiny loading with 4 images a batch, and one stage of 2 epochs at learning rate 2e-3
    **conftest.TINY,
    "batch_size": 4,
    "stages": {"1": {"trainable": "all", "learning_rate": 2e-3, "weight_decay": 0.0, "epochs": 2}},
}


def write_class_folders(
    root: Path, counts: dict[str, int] = COUNTS, size: int = SIZE[0], seed: int = 0, blob: float = 110.0
) -> list[Path]:
    """8-bit grey PNGs in ``root/<split>/<neg|pos>/``, ``counts[split]`` per class: a textured half-ellipse
    of "tissue" (grey levels 80-120) against the left edge on a black background (so breast masking keeps
    it whole); the positives carry a Gaussian blob of peak ``blob`` grey levels inside it. The model
    card's demo figures were measured on this set (see docs/README.md there)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    tissue = ((yy - size / 2) / (0.45 * size)) ** 2 + (xx / (0.7 * size)) ** 2 <= 1
    files = []
    for split, n in counts.items():
        for label, cls in enumerate(("neg", "pos")):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                img = tissue * (80 + 40 * rng.random((size, size)))
                if label:
                    r = rng.integers(int(0.3 * size), int(0.7 * size))  # the blob's centre, inside the tissue
                    c = rng.integers(int(0.1 * size), int(0.4 * size))
                    img += tissue * blob * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * (size / 12) ** 2))
                path = folder / f"{cls}{i}.png"
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
                files.append(path)
    return files


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("efficientnet")
    files = write_class_folders(base / "images")
    summary = prepare("folder", base / "images", base / "manifest", size=SIZE, workers=1, progress=False)
    assert summary["images"] == len(files) and summary["labels"] == {"0": len(files) // 2, "1": len(files) // 2}
    shutil.copytree(BUNDLES / NAME, base / NAME)
    mp = pytest.MonkeyPatch()
    use_mlflow_store(mp, base)
    result = train_bundle(base / NAME, ["demo.yaml"], {**TINY, "dataset_dir": str(base / "manifest")})
    yield base, result, files
    mp.undo()


def test_metadata_and_zoo_layout():
    bundle = BUNDLES / NAME
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["name"] == NAME and meta["version"] in meta["changelog"]
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [384, 384]
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 1
    for f in ("train.yaml", "evaluate.yaml", "inference.yaml", "multi_gpu_train.yaml", "logging.conf", "demo.yaml"):
        assert (bundle / "configs" / f).is_file()
    assert (bundle / "docs" / "README.md").is_file() and (bundle / "LICENSE").is_file()


def test_trains_one_stage_from_class_folders_and_records_the_model(trained):
    base, result, _ = trained
    assert [r["stage"] for r in result] == [1] and 0.0 <= result[0]["best_metric"] <= 1.0  # val AUC
    meta = json.loads((base / NAME / "models" / "model_meta.json").read_text())
    assert meta["arch"] == "efficientnetv2-tiny" and meta["out_channels"] == 1 and meta["image_size"] == list(SIZE)
    assert meta["input_norm"] is None  # from scratch: no ImageNet normalisation
    state = torch.load(base / NAME / "models" / "model.pt", weights_only=True)  # a plain state_dict
    assert state["classifier.1.weight"].shape == (1, 320)


def test_one_mlflow_run_for_the_stage_with_auc_and_validation_loss_per_epoch(trained):
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    stage = [r for r in runs if r.data.tags.get("stage") == "1"]
    assert len(stage) == 1 and stage[0].info.status == "FINISHED"
    assert {"val_auc", "val_loss", "train_loss"} <= set(stage[0].data.metrics)
    assert stage[0].data.params["optimizer"] == "NAdam" and float(stage[0].data.params["lr_factor"]) == 0.3
    history = client.get_metric_history(stage[0].info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2] and all(m.value > 0 for m in history)


@pytest.fixture()
def workflow(trained, tmp_path):
    base, _, _ = trained
    configs = base / NAME / "configs"
    wf = ConfigWorkflow(
        config_file=[str(configs / "common_train.yaml"), str(configs / "train.yaml"), str(configs / "demo.yaml")],
        workflow_type="train",
        meta_file=str(configs / "metadata.json"),
        logging_file=str(configs / "logging.conf"),
        bundle_root=str(tmp_path / "b"),
        dataset_dir=str(base / "manifest"),
        **TINY,
    )
    wf.initialize()
    return wf


def test_recipe_components_pass_monai_property_checks(workflow):
    assert not workflow.check_properties()
    parser = workflow.parser
    assert type(parser.get_parsed_content("loss")).__name__ == "BCEWithLogitsLoss"
    optimizer = parser.get_parsed_content("optimizer")
    assert type(optimizer).__name__ == "NAdam" and optimizer.defaults["lr"] == 2e-3
    net = parser.get_parsed_content("network")
    assert isinstance(net.head_activation, torch.nn.SELU) and net.classifier[0].p == 0.2


def test_plateau_cuts_the_rate_and_early_stopping_counts_on_the_validation_loss(workflow):
    parser = workflow.parser
    lr_patience = parser.get_parsed_content("lr_patience")  # the demo's 2 (the recipe's 7)
    optimizer, evaluator = parser.get_parsed_content("optimizer"), parser.get_parsed_content("validate#evaluator")
    step = [h for h in parser.get_parsed_content("train#handlers") if type(h).__name__ == "LrScheduleHandler"]
    assert len(step) == 1 and step[0].epoch_level
    for epoch, loss in enumerate([0.7] * (lr_patience + 2)):
        evaluator.state.metrics = {"val_loss": loss}
        step[0](workflow.trainer)
        lr = optimizer.param_groups[0]["lr"]
        assert lr == pytest.approx(2e-3 if epoch <= lr_patience else 2e-3 * 0.3)
    stopper = parser.get_parsed_content("early_stop")
    assert stopper.patience == parser.get_parsed_content("early_stop_patience")
    evaluator.state.metrics = {"val_loss": 0.25, "val_auc": 0.9}
    assert stopper.score_function(evaluator) == -0.25  # lower loss = better score, whatever the AUC


def test_export_then_predict_redoes_the_preprocessing_and_gives_the_sigmoid(trained, tmp_path):
    base, _, files = trained
    zipped = export_bundle(base / NAME, tmp_path / "dist")
    assert zipped.name == f"{NAME}-0.1.0.zip"
    raw = [files[-1], files[0]]  # a positive and a negative test image, as found in the folders
    table = predict(zipped, [str(f) for f in raw], tmp_path / "pred.csv", progress=False)
    got = table[table["level"] == "image"].set_index("file")["probability"]
    # the same images as prepare cached them, through the trained bundle's own network
    images = pd.read_csv(base / "manifest" / "images.csv").set_index("source")
    net = build_inference_network(base / NAME)
    with torch.no_grad():
        for f in raw:
            x = eval_transforms(from_cache=True)({"image": images.loc[str(f), "image"]})["image"][None].float()
            assert got[str(f)] == pytest.approx(torch.sigmoid(net(x)).item(), abs=0.02)  # bf16 in predict


def test_inference_and_evaluate_configs_run_as_plain_monai_bundles(trained):
    base, _, _ = trained
    bundle = base / NAME
    configs = bundle / "configs"
    common = {
        "meta_file": str(configs / "metadata.json"),
        "logging_file": str(configs / "logging.conf"),
        "bundle_root": str(bundle),
    }
    infer = ConfigWorkflow(
        config_file=config_files(bundle),
        workflow_type="infer",
        input_dir=str(base / "images" / "test"),
        **common,
    )
    infer.initialize()
    assert not infer.check_properties()
    infer.run()
    written = pd.read_csv(bundle / "predictions" / "predictions.csv")
    assert len(written) == 2 * COUNTS["test"] and written["probability"].between(0, 1).all()
    assert (written["prob_negative"] + written["prob_positive"]).round(6).eq(1).all()
    evaluate = ConfigWorkflow(
        config_file=config_files(bundle, "evaluate"),
        workflow_type="eval",
        dataset_dir=str(base / "manifest"),
        **common,
    )
    evaluate.initialize()
    evaluate.run()
    saved = (bundle / "eval" / "test" / "metrics.csv").read_text()
    assert "val_auc" in saved and "val_loss" in saved
