"""The RSNA screening recipe as a bundle: SE-ResNeXt, focal loss, one-cycle per iteration, pF1 selection."""

from __future__ import annotations

import json
import shutil

import mlflow
import pandas as pd
import pytest
from monai.bundle import ConfigWorkflow

import tests.conftest as conftest
from mammo_monai.data.prepare import prepare
from mammo_monai.inference.evaluate import evaluate
from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.predict import predict
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.workflow import train_bundle
from tests.conftest import BUNDLES, use_mlflow_store

SIZE = (96, 48)  # H x W, as the recipe's 1024 x 512
TINY = {  # the shared tiny loading with 4 images a batch, and one stage of 2 epochs at learning rate 1e-3
    **conftest.TINY,
    "batch_size": 4,
    "stages": {"1": {"trainable": "all", "learning_rate": 1e-3, "weight_decay": 0.0, "epochs": 2}},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("screening")
    make_cbis_tree(base / "raw", patients=12, seed=3, size=(128, 100), workers=1)
    prepare(
        "cbis-ddsm",
        base / "raw",
        base / "manifest",
        size=SIZE,
        workers=1,
        progress=False,
        transform_options={"crop": True, "keep_aspect": True},
    )
    shutil.copytree(BUNDLES / "screening_classifier", base / "screening_classifier")
    mp = pytest.MonkeyPatch()
    use_mlflow_store(mp, base)
    result = train_bundle(base / "screening_classifier", ["demo.yaml"], {**TINY, "dataset_dir": str(base / "manifest")})
    yield base, result
    mp.undo()


def test_trains_one_stage_and_stores_the_pf1_selection_with_the_model(trained):
    base, result = trained
    bundle = base / "screening_classifier"
    assert [r["stage"] for r in result] == [1]
    selection = json.loads((bundle / "models" / "stage1" / "selection.json").read_text())
    meta = json.loads((bundle / "models" / "model_meta.json").read_text())
    assert meta["selection"]["aggregation"] in ("mean", "max") and 0 <= meta["selection"]["threshold"] <= 1
    assert meta["selection"] == selection and meta["out_channels"] == 1
    assert meta["preprocessing"]["crop"] and meta["preprocessing"]["keep_aspect"] and meta["image_size"] == list(SIZE)
    assert abs(result[0]["best_metric"] - selection["pf1"]) < 1e-9  # the checkpoint was chosen by this pF1


def test_one_mlflow_run_for_the_stage_with_pf1_and_its_threshold(trained):
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("screening_classifier").experiment_id])
    stage = [r for r in runs if r.data.tags.get("stage") == "1"]
    assert len(stage) == 1 and stage[0].info.status == "FINISHED"
    metrics = stage[0].data.metrics
    assert {"val_pf1", "val_pf1_threshold", "val_auc", "train_loss"} <= set(metrics)
    history = client.get_metric_history(stage[0].info.run_id, "val_pf1")
    assert [m.step for m in history] == [1, 2]  # once per epoch


def test_one_cycle_steps_every_iteration_and_the_loss_is_focal(trained, tmp_path):
    base, _ = trained
    configs = base / "screening_classifier" / "configs"
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
    assert not wf.check_properties()
    parser = wf.parser
    assert type(parser.get_parsed_content("loss")).__name__ == "FocalLoss"
    scheduler = parser.get_parsed_content("lr_scheduler")
    steps = 2 * len(parser.get_parsed_content("train#dataloader"))
    assert type(scheduler).__name__ == "OneCycleLR" and scheduler.total_steps == steps
    handler = [h for h in parser.get_parsed_content("train#handlers") if type(h).__name__ == "LrScheduleHandler"]
    assert len(handler) == 1 and handler[0].epoch_level is False


def test_export_then_predict_and_evaluate(trained, tmp_path):
    base, _ = trained
    zipped = export_bundle(base / "screening_classifier", tmp_path / "dist")
    images = pd.read_csv(base / "manifest" / "images.csv")
    dicoms = sorted((base / "raw" / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"))[:2]
    table = predict(zipped, [str(d) for d in dicoms], tmp_path / "pred.csv", progress=False)
    probs = table.loc[table["level"] == "image", "probability"]
    assert len(probs) == 2 and probs.between(0, 1).all() and probs.nunique() == 2  # sigmoid of one logit
    threshold = json.loads((base / "screening_classifier" / "models" / "model_meta.json").read_text())["selection"]
    breasts, exams = table[table["level"] == "breast"], table[table["level"] == "exam"]
    predicted = table[table["level"] == "image"]
    assert len(breasts) == predicted["breast"].nunique() >= 1  # every breast gets its decision, even of one image
    assert (breasts["decision"] == (breasts["probability"] >= threshold["threshold"]).astype(int)).all()
    assert len(exams) == predicted["exam"].nunique() and exams["n_views"].sum() == 2  # a CBIS exam is its case
    metrics = evaluate(zipped, base / "manifest", split="test", out_dir=tmp_path / "eval", track=False)
    assert metrics["image"]["n"] == int((images["split"] == "test").sum())
    decision = metrics["decision"]  # the stored threshold and aggregation, per breast
    assert decision["threshold"] == threshold["threshold"] and decision["level"].startswith(
        f"breast ({threshold['aggregation']}"
    )
    assert {"pf1", "pf1_raw", "sensitivity", "specificity", "recall_rate"} <= set(decision)
    scores = pd.read_csv(tmp_path / "eval" / "predictions.csv")["probability"]
    assert scores.between(0, 1).all() and scores.nunique() > 1
