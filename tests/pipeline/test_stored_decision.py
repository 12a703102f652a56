"""A model's stored operating point (aggregation + threshold) decides per breast, by hand-computed values."""

from __future__ import annotations

import pandas as pd
import pytest

from mammo_monai.evaluation.report import stored_decision

# breast A (positive): views 0.9, 0.3 -> mean 0.6, max 0.9
# breast B (negative): views 0.5, 0.1 -> mean 0.3, max 0.5
# breast C (negative): views 0.2, 0.2 -> mean 0.2, max 0.2
TABLE = pd.DataFrame(
    {
        "exam": ["A", "A", "B", "B", "C", "C"],
        "label": [1, 0, 0, 0, 0, 0],
        "probability": [0.9, 0.3, 0.5, 0.1, 0.2, 0.2],
    }
)


def test_mean_aggregation_at_its_threshold():
    d = stored_decision(TABLE, {"aggregation": "mean", "threshold": 0.55})
    # called positive: A only -> sensitivity 1, specificity 1, recall rate 1/3, pF1 1
    assert (d["n"], d["positives"], d["sensitivity"], d["specificity"]) == (3, 1, 1.0, 1.0)
    assert d["recall_rate"] == pytest.approx(1 / 3) and d["pf1"] == 1.0
    # raw: ctp 0.6, cfp 0.3 + 0.2 = 0.5 -> precision 0.6 / 1.1, recall 0.6 -> pF1 = 2pr / (p + r) = 0.5714...
    precision, recall = 0.6 / 1.1, 0.6
    assert d["pf1_raw"] == pytest.approx(2 * precision * recall / (precision + recall))


def test_max_aggregation_flags_more_breasts_at_a_low_threshold():
    d = stored_decision(TABLE, {"aggregation": "max", "threshold": 0.5})
    # max: A 0.9, B 0.5, C 0.2 -> A and B called: specificity 1/2, recall rate 2/3, precision 1/2 -> pF1 2/3
    assert d["specificity"] == 0.5 and d["recall_rate"] == pytest.approx(2 / 3)
    assert d["pf1"] == pytest.approx(2 / 3) and d["level"] == "breast (max of its views)"
