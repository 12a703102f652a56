from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mammo_monai.evaluation.report import level_tables, split_metrics
from mammo_monai.evaluation.scores import tune_thresholds


def _predictions(n_patients: int, seed: int, shift: float) -> pd.DataFrame:
    """Two breasts x two views per patient; the four views share the patient's label and score."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        label = int(rng.integers(0, 2))
        score = float(np.clip(0.3 * label + rng.uniform(0, 0.7) + shift, 0, 1))
        for side in "LR":
            for view in ("CC", "MLO"):
                rows.append(
                    {
                        "image_id": f"{seed}-{i}-{side}-{view}",
                        "patient_id": f"P{seed}-{i}",
                        "laterality": side,
                        "label": label,
                        "probability": score,
                    }
                )
    return pd.DataFrame(rows)


def test_split_metrics_resample_patients_and_take_thresholds_from_validation():
    val, test = _predictions(20, seed=1, shift=0.0), _predictions(30, seed=2, shift=0.15)  # test scores drift upwards
    metrics = split_metrics(test, val, "val", seed=0, n_boot=100)
    assert set(metrics) == {"image", "exam_mean", "exam_max"}
    image = metrics["image"]
    assert image["n"] == 120 and image["auc_ci_method"].startswith("percentile bootstrap over 30 patients")
    tuned = tune_thresholds(val["label"], val["probability"])
    assert image["at_val_youden"]["threshold"] == tuned["youden"] and image["val_pf1_threshold"] == tuned["pf1"]
    assert image["thresholds_from"] == "split 'val' (80 rows)"
    assert image["oracle"]["at_youden"]["threshold"] == pytest.approx(
        tune_thresholds(test["label"], test["probability"])["youden"]
    )
    exams = metrics["exam_mean"]
    assert exams["n"] == 60 and "over 30 patients" in exams["auc_ci_method"]
    assert exams["thresholds_from"] == "split 'val' (40 rows)"


def test_without_a_validation_split_only_in_sample_thresholds_are_reported():
    metrics = split_metrics(_predictions(10, seed=3, shift=0.0), None)
    assert "at_val_youden" not in metrics["image"] and "oracle" in metrics["image"]


def test_exam_rows_keep_their_patient():
    table = _predictions(3, seed=4, shift=0.0)
    exams = level_tables(table)["exam_max"]
    assert len(exams) == 6 and (exams["patient_id"] == exams["exam"].str.rsplit("_", n=1).str[0]).all()
