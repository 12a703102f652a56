"""Named operating points chosen on labelled cases: the threshold on the (calibrated) P(malignant) at which
a case is recalled (``probability >= threshold``), with its sensitivity, specificity and recall rate on
those cases.

- ``high_sensitivity``: the largest threshold whose sensitivity is at least 0.90;
- ``balanced``: the threshold of Youden's J (sensitivity + specificity - 1 at its largest; the largest
  such threshold when several tie);
- ``recall_rate_10pct``: the largest threshold that recalls at least 10 % of the cases.

Candidate thresholds are the cases' own probabilities (scikit-learn's ``roc_curve`` without dropping any).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

#: the operating points :func:`choose_operating_points` chooses, with what each targets
TARGETS = {
    "high_sensitivity": "the largest threshold with sensitivity >= 0.90",
    "balanced": "Youden's J (max sensitivity + specificity - 1)",
    "recall_rate_10pct": "the largest threshold recalling >= 10% of cases",
}
HIGH_SENSITIVITY = 0.90
RECALL_RATE = 0.10


@dataclass(frozen=True)
class OperatingPoint:
    """A named threshold (recall when ``probability >= threshold``) and its figures on the cases it was chosen on."""

    name: str
    threshold: float
    sensitivity: float
    specificity: float
    recall_rate: float
    target: str = ""

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """1 (recall) where ``probs >= threshold``, else 0."""
        return (np.asarray(probs, dtype=float) >= self.threshold).astype(int)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> OperatingPoint:
        return cls(
            name=str(record["name"]),
            threshold=float(record["threshold"]),
            sensitivity=float(record["sensitivity"]),
            specificity=float(record["specificity"]),
            recall_rate=float(record["recall_rate"]),
            target=str(record.get("target", "")),
        )


def check_both_classes(labels: np.ndarray, what: str = "the cases") -> np.ndarray:
    """``labels`` as 0/1 integers; a one-line ValueError when they hold one class only (or other values)."""
    y = np.asarray(labels).astype(int)
    if y.size == 0:
        raise ValueError(f"{what}: no cases")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be 0 or 1, found {sorted(set(y.tolist()))[:5]}")
    if y.min() == y.max():
        raise ValueError(f"{what}: all {y.size} cases have label {y[0]}; both benign and malignant cases are needed")
    return y


def choose_operating_points(
    probs: np.ndarray, labels: np.ndarray, what: str = "the cases"
) -> dict[str, OperatingPoint]:
    """The operating points of :data:`TARGETS` chosen on ``probs`` (calibrated P(malignant)) and ``labels``.

    Raises:
        ValueError: one class only (sensitivity or specificity undefined), naming ``what``.
    """
    y = check_both_classes(labels, what)
    p = np.asarray(probs, dtype=float)
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    fpr, tpr, thresholds = fpr[1:], tpr[1:], thresholds[1:]  # the first threshold (inf) recalls nobody
    rate = (tpr * y.sum() + fpr * (y.size - y.sum())) / y.size
    chosen = {
        "high_sensitivity": int(np.argmax(tpr >= HIGH_SENSITIVITY - 1e-12)),
        "balanced": int(np.argmax(tpr - fpr)),
        "recall_rate_10pct": int(np.argmax(rate >= RECALL_RATE - 1e-12)),
    }  # thresholds descend: argmax finds the first, i.e. the largest threshold that qualifies
    return {
        name: OperatingPoint(
            name=name,
            threshold=float(thresholds[i]),
            sensitivity=float(tpr[i]),
            specificity=float(1 - fpr[i]),
            recall_rate=float(rate[i]),
            target=TARGETS[name],
        )
        for name, i in chosen.items()
    }
