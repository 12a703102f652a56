"""Binary classification figures for mammography: AUC with a bootstrap CI, operating points, the
RSNA probabilistic F1, and exam-level aggregation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve


def pf1(labels: np.ndarray, probs: np.ndarray) -> float:
    """RSNA probabilistic F1: predictions clipped to [0, 1]; ctp = sum over positives, cfp = sum
    over negatives; precision = ctp / (ctp + cfp), recall = ctp / positives; 0 when either is 0."""
    y = np.asarray(labels).astype(bool)
    p = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    ctp, cfp = p[y].sum(), p[~y].sum()
    if y.sum() == 0 or ctp + cfp == 0:
        return 0.0
    precision, recall = ctp / (ctp + cfp), ctp / y.sum()
    return 0.0 if precision == 0 or recall == 0 else float(2 * precision * recall / (precision + recall))


def best_pf1(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """(pF1, threshold) maximising pF1 of the predictions binarised at ``probs >= threshold``."""
    best = (pf1(labels, probs >= 0.5), 0.5)
    for t in np.unique(probs):
        score = pf1(labels, probs >= t)
        if score > best[0]:
            best = (score, float(t))
    return best


def youden_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """Threshold maximising sensitivity + specificity - 1 (Youden's J) on the ROC curve."""
    fpr, tpr, thresholds = roc_curve(labels, probs)
    return float(np.clip(thresholds[int(np.argmax(tpr - fpr))], 0.0, 1.0))


def operating_point(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, sensitivity and specificity of ``probs >= threshold``."""
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(probs) >= threshold
    sens = float((pred & y).sum() / max(y.sum(), 1))
    spec = float((~pred & ~y).sum() / max((~y).sum(), 1))
    return {"threshold": float(threshold), "accuracy": float((pred == y).mean()), "sensitivity": sens, "specificity": spec}


def bootstrap_auc(labels: np.ndarray, probs: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the AUC over ``n`` resamples (resamples with one class skipped)."""
    rng = np.random.default_rng(seed)
    y, p = np.asarray(labels), np.asarray(probs)
    aucs = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            aucs.append(roc_auc_score(y[idx], p[idx]))
    if not aucs:
        return float("nan"), float("nan")
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def binary_report(labels: np.ndarray, probs: np.ndarray, seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Every figure of :mod:`mammo_monai.engine.scores` for one set of predictions."""
    y, p = np.asarray(labels).astype(int), np.asarray(probs, dtype=float)
    both = 0 < y.sum() < len(y)
    auc = float(roc_auc_score(y, p)) if both else float("nan")
    lo, hi = bootstrap_auc(y, p, n_boot, seed) if both else (float("nan"), float("nan"))
    youden = youden_threshold(y, p) if both else 0.5
    f1, f1_t = best_pf1(y, p)
    return {"n": int(len(y)), "positives": int(y.sum()), "auc": auc, "auc_ci95": [lo, hi],
            "at_0.5": operating_point(y, p, 0.5), "at_youden": operating_point(y, p, youden),
            "pf1": pf1(y, p), "pf1_best": f1, "pf1_best_threshold": f1_t}


def aggregate_exams(table: pd.DataFrame, by: str = "exam", how: str = "mean") -> pd.DataFrame:
    """One row per exam (``by``): label = max of its images' labels, probability = mean or max."""
    if how not in ("mean", "max"):
        raise ValueError(f"aggregation must be 'mean' or 'max', got {how!r}")
    return table.groupby(by, sort=True).agg(label=("label", "max"), probability=("probability", how)).reset_index()
