from __future__ import annotations

import json

import pandas as pd

from mammo_monai.demo import run_demo
from tests.conftest import use_mlflow_store

EPOCHS = {"stages#1#epochs": 1}


def test_very_small_demo_end_to_end(tmp_path, monkeypatch):
    use_mlflow_store(monkeypatch, tmp_path)
    summary = run_demo(
        tmp_path / "demo",
        patients=12,
        test_patients=6,
        seed=3,
        workers=1,
        size=(128, 100),
        patch_size=32,
        overrides={
            "patch_classifier": {"stages#1#epochs": 1, "num_workers": 0},
            "whole_image_classifier": {**EPOCHS, "batch_size": 4},
        },
    )
    saved = json.loads((tmp_path / "demo" / "summary.json").read_text())
    for key in (
        "wall_seconds",
        "patients",
        "test_auc",
        "test_auc_tta",
        "patch_val_auc",
        "exported",
        "tracking_uri",
        "experiments",
    ):
        assert key in saved
    assert saved["patients"] == 12 and len(saved["exported"]) == 2
    assert 0 <= summary["patch_val_auc"] <= 1
    assert 0 <= summary["test_auc"] <= 1 and 0 <= summary["test_auc_tta"] <= 1  # seed 3 gives both classes in test
    images = pd.read_csv(tmp_path / "demo" / "manifest" / "images.csv")
    assert len(images) == saved["images"]
    assert images.patient_id.nunique() == 18  # 12 to train and validate, 6 held out
    assert images[images.split == "test"].patient_id.nunique() == 6
    assert saved["test_auc_ci95"][0] <= saved["test_auc"] <= saved["test_auc_ci95"][1]
    assert 0.5 < saved["test_auc_attainable"] <= 1  # the Bayes reader of the drawn looks (synthetic/ceiling.py)
    calibration = saved["calibration"]  # training calibrated on validation; evaluate applied it to test
    assert calibration["fitted_on"]["n"] == (images.split == "val").sum() and len(calibration["test_ece"]) == 2
    assert set(calibration["operating_points"]) == {"high_sensitivity", "balanced", "recall_rate_10pct"}
