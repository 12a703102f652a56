"""What a fitted calibration does on labelled cases: ECE and log-loss before and after it, and the sensitivity,
specificity and recall rate of each of its operating points (thresholds fixed where they were chosen), flat
for MLflow or nested for ``metrics.json``."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import log_loss

from mammo_monai.evaluation.calibration import EPS, Calibration
from mammo_monai.evaluation.reliability import expected_calibration_error


def _rate(decisions: np.ndarray, where: np.ndarray) -> float:
    return float(decisions[where].mean()) if where.any() else float("nan")


def calibrated_figures(calibration: Calibration, probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The calibration applied to the raw P(malignant) ``probs`` of cases with 0/1 ``labels``.

    Returns:
        ``{"method", "fitted_on", "n", "positives", "ece_bins", "ece_before", "ece_after", "log_loss_before",
        "log_loss_after", "operating_points": {name: {"threshold", "sensitivity", "specificity",
        "recall_rate", "chosen_on": {"sensitivity", "specificity"}}}}``; a rate of a class the cases lack is NaN.
    """
    p, y = np.asarray(probs, dtype=float), np.asarray(labels, dtype=int)
    calibrated = calibration.apply(p)
    bins = calibration.ece_bins
    points = {}
    for name, point in calibration.operating_points.items():
        decided = point.decide(calibrated)
        points[name] = {
            "threshold": point.threshold,
            "sensitivity": _rate(decided, y == 1),
            "specificity": 1 - _rate(decided, y == 0),
            "recall_rate": float(decided.mean()) if decided.size else float("nan"),
            "chosen_on": {"sensitivity": point.sensitivity, "specificity": point.specificity},
        }
    return {
        "method": calibration.method,
        "fitted_on": dict(calibration.fitted_on),
        "n": int(y.size),
        "positives": int(y.sum()),
        "ece_bins": bins,
        "ece_before": expected_calibration_error(p, y, bins),
        "ece_after": expected_calibration_error(calibrated, y, bins),
        "log_loss_before": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "log_loss_after": float(log_loss(y, np.clip(calibrated, EPS, 1 - EPS), labels=[0, 1])),
        "operating_points": points,
    }


def calibration_metrics(calibration: Calibration) -> dict[str, float]:
    """The figures a calibration recorded on the cases it was fitted on, flat (``ece_before``,
    ``balanced/sensitivity`` ...) for MLflow metrics; non-finite figures left out."""
    flat = {k: getattr(calibration, k) for k in ("ece_before", "ece_after", "log_loss_before", "log_loss_after")}
    flat |= {"n": calibration.n, "positives": calibration.positives}
    for name, point in calibration.operating_points.items():
        flat |= {f"{name}/{k}": getattr(point, k) for k in ("threshold", "sensitivity", "specificity", "recall_rate")}
    return {k: float(v) for k, v in flat.items() if np.isfinite(v)}
