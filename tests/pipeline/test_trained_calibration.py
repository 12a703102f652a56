"""Training calibrates: the last stage of a whole-image classifier fits a calibration and its operating points
on the validation split with the published (best) model, writes ``models/calibration.json``, logs it to
MLflow; ``predict``, ``evaluate`` and ``export`` then carry it; ``calibrate_on_validation: false`` writes
none (and a retrained model never keeps the old one). One tiny bundle is trained for the module."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

import tests.conftest as conftest
from mammo_monai.data.prepare import prepare
from mammo_monai.evaluation.calibration import METHODS, fit_calibration
from mammo_monai.evaluation.operating_points import TARGETS
from mammo_monai.inference.evaluate import evaluate, score_split
from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.inference.predict import predict
from mammo_monai.training.workflow import train_bundle
from tests.bundles.test_efficientnet_bundle import write_class_folders
from tests.conftest import BUNDLES, use_mlflow_store

NAME = "whole_image_classifier"
COUNTS = {"train": 8, "val": 6, "test": 4}  # per class: 12 validation images, 6 malignant
OVERRIDES = {
    **conftest.TINY,
    "batch_size": 4,
    "arch": "resnet10-tiny",
    "patch_checkpoint": None,  # from scratch: no patch classifier to train first
    "stages": {"1": {"trainable": "all", "learning_rate": 1e-3, "weight_decay": 0.0, "epochs": 1}},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("trained_calibration")
    files = write_class_folders(base / "images", COUNTS, size=48)
    prepare("folder", base / "images", base / "manifest", size=(48, 40), workers=1, progress=False)
    shutil.copytree(BUNDLES / NAME, base / NAME)
    mp = pytest.MonkeyPatch()
    use_mlflow_store(mp, base)
    overrides = {**OVERRIDES, "dataset_dir": str(base / "manifest"), "image_size": [48, 40]}
    train_bundle(base / NAME, ["demo.yaml"], overrides)
    yield {"base": base, "bundle": base / NAME, "manifest": base / "manifest", "files": files, "overrides": overrides}
    mp.undo()


def _record(bundle: Path) -> dict:
    return json.loads((bundle / "models" / "calibration.json").read_text())


def test_training_fits_the_calibration_of_the_published_model_on_validation(trained, tmp_path):
    bundle, record = trained["bundle"], _record(trained["bundle"])
    meta = json.loads((bundle / "models" / "model_meta.json").read_text())
    assert record["method"] in METHODS
    assert record["fitted_on"] == {
        "split": "val",
        "n": 2 * COUNTS["val"],
        "positives": COUNTS["val"],
        "fitted_by": "training",
        "training_id": meta["training_id"],
    }
    figures = record["figures"]
    assert all(np.isfinite(figures[k]) for k in ("ece_before", "ece_after", "log_loss_before", "log_loss_after"))
    assert set(record["operating_points"]) == set(TARGETS)
    assert all(0 <= p["sensitivity"] <= 1 and 0 <= p["specificity"] <= 1 for p in record["operating_points"].values())
    assert (bundle / "eval" / "stage1" / "reliability.png").stat().st_size > 0
    # the published model.pt scored the validation split: refitting on its scores gives the recorded calibration
    opened = open_bundle(bundle, tmp_path)
    table = pd.read_csv(trained["manifest"] / "images.csv")
    val = table[table["split"] == "val"].reset_index(drop=True)
    raw = score_split(opened, val, "val", str(tmp_path))
    again = fit_calibration(raw, val["label"].to_numpy(), fitted_on=record["fitted_on"])
    assert again.to_record() == json.loads(json.dumps(record))


def test_the_calibration_is_logged_on_the_stage_and_training_runs(trained):
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    figures = _record(trained["bundle"])["figures"]
    for run in runs:  # the stage run and its parent
        assert run.data.metrics["calibration/ece_before"] == pytest.approx(figures["ece_before"])
        assert run.data.metrics["calibration/ece_after"] == pytest.approx(figures["ece_after"])
        assert {"calibration/balanced/sensitivity", "calibration/balanced/specificity"} <= set(run.data.metrics)
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "calibration")}
        assert logged == {"calibration/calibration.json", "calibration/reliability.png"}


def test_predict_on_the_trained_bundle_writes_the_calibrated_columns(trained, tmp_path):
    images = [str(f) for f in trained["files"] if f.parent.parent.name == "test"]
    table = predict(trained["bundle"], images, tmp_path / "p.csv", progress=False, backend="eager")
    points = _record(trained["bundle"])["operating_points"]
    assert {"probability_calibrated", *(f"decision@{name}" for name in points)} <= set(table.columns)
    scored = table[table["probability"].notna()]
    for name, point in points.items():
        expected = (scored["probability_calibrated"] >= point["threshold"]).astype(int)
        assert (scored[f"decision@{name}"] == expected).all()


def test_evaluate_reports_calibrated_figures_on_the_split(trained, tmp_path):
    metrics = evaluate(trained["bundle"], trained["manifest"], "test", out_dir=tmp_path / "ev", track=False)
    cal, record = metrics["calibration"], _record(trained["bundle"])
    assert cal["method"] == record["method"] and cal["n"] == 2 * COUNTS["test"]
    assert 0 <= cal["ece_before"] <= 1 and 0 <= cal["ece_after"] <= 1
    for name, point in cal["operating_points"].items():
        assert point["threshold"] == record["operating_points"][name]["threshold"]
        assert 0 <= point["sensitivity"] <= 1 and 0 <= point["specificity"] <= 1
    predictions = pd.read_csv(tmp_path / "ev" / "predictions.csv")
    calibrated = predictions["probability_calibrated"].to_numpy()
    decided = predictions["decision@balanced"].to_numpy()
    positives = predictions["label"].to_numpy() == 1
    assert cal["operating_points"]["balanced"]["sensitivity"] == pytest.approx(decided[positives].mean())
    assert ((calibrated >= cal["operating_points"]["balanced"]["threshold"]) == decided).all()
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["calibration"]["ece_after"] == cal["ece_after"]
    assert (tmp_path / "ev" / "reliability.png").stat().st_size > 0


def test_the_export_carries_the_calibration_and_its_card_states_it(trained, tmp_path):
    zipped = export_bundle(trained["bundle"], tmp_path)
    record = _record(trained["bundle"])
    with zipfile.ZipFile(zipped) as zf:
        assert json.loads(zf.read(f"{NAME}/models/calibration.json")) == record
        card = zf.read(f"{NAME}/docs/README.md").decode()
    section = card.split("## This model", 1)[1].split("\n## ", 1)[0]
    figures = record["figures"]
    assert f"| calibration | {record['method']} (lowest" in section
    assert f"split `val`: {figures['n']} images, {figures['positives']} malignant, at the end of training" in section
    assert f"{figures['ece_before']:.4f} before, {figures['ece_after']:.4f} after" in section
    for name, point in record["operating_points"].items():
        line = next(row for row in section.splitlines() if f"operating point `{name}`" in row)
        assert f">= {point['threshold']:.4f}: sensitivity {point['sensitivity']:.3f}" in line
        assert f"specificity {point['specificity']:.3f}" in line


def test_with_the_switch_off_a_retrained_bundle_carries_no_calibration(trained, tmp_path):
    copy = tmp_path / NAME
    shutil.copytree(trained["bundle"], copy)
    assert (copy / "models" / "calibration.json").is_file()
    train_bundle(copy, ["demo.yaml"], {**trained["overrides"], "calibrate_on_validation": False}, restart=True)
    assert not (copy / "models" / "calibration.json").exists()  # the old model's calibration went with it
    assert open_bundle(copy, tmp_path / "w").calibration is None


def test_the_demo_summary_states_validation_and_test_figures(trained, tmp_path):
    from mammo_monai.demo import _calibration_lines, calibration_summary

    metrics = evaluate(trained["bundle"], trained["manifest"], "test", out_dir=tmp_path / "ev", track=False)
    summary, record = calibration_summary(trained["bundle"], metrics), _record(trained["bundle"])
    assert summary["val_ece"] == [round(record["figures"][k], 4) for k in ("ece_before", "ece_after")]
    assert summary["test_ece"] == [round(metrics["calibration"][k], 4) for k in ("ece_before", "ece_after")]
    tested = metrics["calibration"]["operating_points"]["high_sensitivity"]
    assert summary["operating_points"]["high_sensitivity"]["test_specificity"] == round(tested["specificity"], 4)
    printed = _calibration_lines(summary)
    assert f"test {summary['test_ece'][0]:.3f} -> {summary['test_ece'][1]:.3f}" in printed
    assert all(f"  {name} (calibrated P >= " in printed for name in record["operating_points"])
    assert calibration_summary(tmp_path, metrics) is None  # a bundle without calibration.json


def test_a_validation_split_too_small_to_calibrate_is_a_warning_and_leaves_no_stale_calibration(
    trained, tmp_path, caplog
):
    from ignite.engine import Engine

    from mammo_monai.inference.trained_calibration import CalibrateOnValidation

    copy = tmp_path / NAME
    shutil.copytree(trained["bundle"], copy, ignore=shutil.ignore_patterns("eval"))
    table = pd.read_csv(trained["manifest"] / "images.csv")
    positives = table.index[(table["split"] == "val") & (table["label"] == 1)]
    table.drop(positives[1:]).to_csv(tmp_path / "one_positive.csv", index=False)  # 1 malignant validation image
    handler = CalibrateOnValidation(
        str(copy), str(tmp_path / "one_positive.csv"), str(copy / "models" / "stage1"), str(tmp_path / "plots")
    )
    handler(Engine(lambda e, b: None))  # returns: the training goes on
    assert not (copy / "models" / "calibration.json").exists() and not (tmp_path / "plots").exists()
    assert "no calibration on validation" in caplog.text and "1 case(s) of one class" in caplog.text
