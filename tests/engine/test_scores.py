from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mammo_monai.engine.scores import aggregate_exams, best_pf1, binary_report, bootstrap_auc, pf1, youden_threshold


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
