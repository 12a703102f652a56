from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mammo_monai.evaluation.scores import (
    aggregate_exams,
    best_pf1,
    binary_report,
    bootstrap_auc,
    pf1,
    tune_thresholds,
    youden_threshold,
)


def test_pf1_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.8, 0.4, 0.2, 0.2, 1.6])  # 1.6 is clipped to 1
    # ctp = 1.2, cfp = 1.4 -> precision 1.2/2.6, recall 1.2/2 = 0.6
    precision, recall = 1.2 / 2.6, 0.6
    assert pf1(y, p) == pytest.approx(2 * precision * recall / (precision + recall))
    assert pf1(y, np.zeros(5)) == 0.0 and pf1(np.zeros(5), p) == 0.0


def test_best_pf1_threshold():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.7, 0.6, 0.1])
    score, threshold = best_pf1(y, p)
    assert (score, threshold) == (1.0, 0.7)  # >= 0.7 keeps exactly the two positives


def test_youden_point_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.5, 0.8, 0.9])
    # at 0.8: sens 2/3, spec 1 -> J = 0.667; at 0.5: sens 1, spec 2/3 -> J = 0.667; at 0.8 reached first on the curve
    t = youden_threshold(y, p)
    assert t in (0.5, 0.8)
    sens = ((p >= t) & (y == 1)).sum() / 3
    spec = ((p < t) & (y == 0)).sum() / 3
    assert sens + spec - 1 == pytest.approx(2 / 3)


def test_bootstrap_ci_is_seeded_and_brackets_the_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    lo, hi = bootstrap_auc(y, p, n=300, seed=4)
    assert (lo, hi) == bootstrap_auc(y, p, n=300, seed=4)
    assert lo < roc_auc_score(y, p) < hi and hi - lo < 0.2


def test_exam_aggregation_mean_and_max():
    table = pd.DataFrame({"exam": ["a", "a", "b", "b"], "label": [0, 1, 0, 0], "probability": [0.2, 0.6, 0.1, 0.3]})
    mean = aggregate_exams(table, how="mean")
    assert mean["label"].tolist() == [1, 0] and mean["probability"].tolist() == pytest.approx([0.4, 0.2])
    assert aggregate_exams(table, how="max")["probability"].tolist() == [0.6, 0.3]


def test_report_operating_points():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    report = binary_report(y, p, n_boot=50)
    assert report["auc"] == 0.75
    assert report["at_0.5"] == {"threshold": 0.5, "accuracy": 0.5, "sensitivity": 0.5, "specificity": 0.5}


def _patients(n_patients: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_patients)
    p = np.clip(0.25 * y + rng.uniform(0, 0.75, n_patients), 0, 1)
    return y, p


def test_patient_bootstrap_is_wider_than_an_image_bootstrap_when_views_repeat():
    y, p = _patients(40, seed=1)
    views = 4  # every patient's four views carry the same label and score: perfectly correlated
    y4, p4, patient = np.repeat(y, views), np.repeat(p, views), np.repeat(np.arange(40), views)
    lo_i, hi_i = bootstrap_auc(y4, p4, n=400, seed=0)
    lo_c, hi_c = bootstrap_auc(y4, p4, n=400, seed=0, groups=patient)
    lo_1, hi_1 = bootstrap_auc(y, p, n=400, seed=0)  # what 40 independent patients are worth
    assert hi_c - lo_c > 1.5 * (hi_i - lo_i)
    assert (hi_c - lo_c) == pytest.approx(hi_1 - lo_1, rel=0.3)


def test_patient_bootstrap_with_one_image_per_patient_is_the_image_bootstrap():
    y, p = _patients(60, seed=2)
    ids = np.array([f"P{i:03d}" for i in range(60)])
    assert bootstrap_auc(y, p, n=200, seed=3, groups=ids) == bootstrap_auc(y, p, n=200, seed=3)


def test_thresholds_chosen_on_validation_are_applied_to_test_and_the_oracle_is_apart():
    val_y, val_p = np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.9])
    tuned = tune_thresholds(val_y, val_p)
    assert tuned == {"youden": 0.35, "pf1": 0.35}  # on validation 0.35 separates the classes exactly
    test_y, test_p = np.array([0, 0, 0, 0, 1, 1, 1, 1]), np.array([0.1, 0.4, 0.5, 0.6, 0.3, 0.7, 0.8, 0.9])
    report = binary_report(test_y, test_p, n_boot=20, thresholds=tuned, thresholds_from="val")
    # at 0.35 on test: positives 0.7, 0.8, 0.9 found (3/4), negatives below 0.35: only 0.1 (1/4)
    assert report["at_val_youden"] == {"threshold": 0.35, "accuracy": 0.5, "sensitivity": 0.75, "specificity": 0.25}
    assert report["pf1_at_val_threshold"] == pytest.approx(pf1(test_y, test_p >= 0.35))
    assert report["thresholds_from"] == "val" and report["val_pf1_threshold"] == 0.35
    oracle = report["oracle"]
    assert oracle["at_youden"]["threshold"] == 0.7 and oracle["at_youden"]["specificity"] == 1.0  # tuned on test itself
    assert oracle["pf1_best"] > report["pf1_at_val_threshold"] and "in-sample" in oracle["note"]
    assert "at_val_youden" not in binary_report(test_y, test_p, n_boot=20)
