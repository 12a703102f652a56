"""Binary classification figures for mammography: AUC with a patient-level bootstrap CI, operating
points at thresholds chosen on validation (and, labelled as such, in-sample "oracle" ones), the RSNA
probabilistic F1, and exam-level aggregation."""

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
    return {
        "threshold": float(threshold),
        "accuracy": float((pred == y).mean()),
        "sensitivity": sens,
        "specificity": spec,
    }


def bootstrap_auc(
    labels: np.ndarray, probs: np.ndarray, n: int = 1000, seed: int = 0, groups: np.ndarray | pd.Series | None = None
) -> tuple[float, float]:
    """95 % percentile interval of the AUC over ``n`` bootstrap resamples (resamples with one class
    skipped).

    Args:
        labels: 0/1 per row.
        probs: score per row.
        n: resamples.
        seed: random seed (same seed, same interval).
        groups: the cluster of each row (the patient): whole clusters are resampled with all their
            rows, because the 2-4 views of one patient are correlated. None resamples rows (only
            right when every row is independent). With one row per group both give the same draws.
    """
    rng = np.random.default_rng(seed)
    y, p = np.asarray(labels), np.asarray(probs)
    if groups is None:
        members = None
        n_units = len(y)
    else:
        codes, _ = pd.factorize(np.asarray(groups), sort=False)  # order of first appearance
        order = np.argsort(codes, kind="stable")
        members = np.split(order, np.cumsum(np.bincount(codes))[:-1])
        n_units = len(members)
    aucs = []
    for _ in range(n):
        draw = rng.integers(0, n_units, n_units)
        idx = draw if members is None else np.concatenate([members[g] for g in draw])
        if 0 < y[idx].sum() < len(idx):
            aucs.append(roc_auc_score(y[idx], p[idx]))
    if not aucs:
        return float("nan"), float("nan")
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def tune_thresholds(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The Youden and best-pF1 thresholds of one set of predictions (choose them on validation and
    apply them to test with :func:`binary_report`); Youden falls back to 0.5 without both classes."""
    y, p = np.asarray(labels).astype(int), np.asarray(probs, dtype=float)
    youden = youden_threshold(y, p) if 0 < y.sum() < len(y) else 0.5
    return {"youden": youden, "pf1": best_pf1(y, p)[1]}


def binary_report(
    labels: np.ndarray,
    probs: np.ndarray,
    seed: int = 0,
    n_boot: int = 1000,
    groups: np.ndarray | pd.Series | None = None,
    thresholds: dict[str, float] | None = None,
    thresholds_from: str = "validation",
) -> dict[str, Any]:
    """Every figure of :mod:`mammo_monai.evaluation.scores` for one set of predictions.

    Args:
        labels: 0/1 per row.
        probs: P(positive) per row.
        seed: bootstrap seed.
        n_boot: bootstrap resamples.
        groups: the patient of each row: the AUC interval resamples patients (see :func:`bootstrap_auc`).
        thresholds: ``{"youden": t, "pf1": t}`` chosen on another split (:func:`tune_thresholds` on
            validation); the report gives this split's figures at them (``at_val_youden``,
            ``pf1_at_val_threshold``). None: only the in-sample figures.
        thresholds_from: where ``thresholds`` were chosen, written into the report.

    The figures under ``oracle`` (and the ``pf1_best`` / ``pf1_best_threshold`` kept for older
    readers) tune the threshold on the very rows they score: optimistic, not an estimate of
    performance on new data.
    """
    y, p = np.asarray(labels).astype(int), np.asarray(probs, dtype=float)
    both = 0 < y.sum() < len(y)
    auc = float(roc_auc_score(y, p)) if both else float("nan")
    lo, hi = bootstrap_auc(y, p, n_boot, seed, groups) if both else (float("nan"), float("nan"))
    units = f"{pd.Series(np.asarray(groups)).nunique()} patients" if groups is not None else f"{len(y)} rows"
    oracle = tune_thresholds(y, p)
    f1 = pf1(y, p >= oracle["pf1"])
    report = {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "auc": auc,
        "auc_ci95": [lo, hi],
        "auc_ci_method": f"percentile bootstrap over {units}, {n_boot} resamples",
        "at_0.5": operating_point(y, p, 0.5),
        "pf1": pf1(y, p),
    }
    if thresholds is not None:
        report["thresholds_from"] = thresholds_from
        report["at_val_youden"] = operating_point(y, p, thresholds["youden"])
        report["pf1_at_val_threshold"] = pf1(y, p >= thresholds["pf1"])
        report["val_pf1_threshold"] = float(thresholds["pf1"])
    report["oracle"] = {
        "note": "thresholds tuned on this split itself (in-sample, optimistic)",
        "at_youden": operating_point(y, p, oracle["youden"]),
        "pf1_best": f1,
        "pf1_best_threshold": oracle["pf1"],
    }
    report["pf1_best"], report["pf1_best_threshold"] = f1, oracle["pf1"]  # in-sample; kept for `mammo-monai evaluate`
    return report


def aggregate_exams(table: pd.DataFrame, by: str = "exam", how: str = "mean") -> pd.DataFrame:
    """One row per exam (``by``): label = max of its images' labels, probability = mean or max."""
    if how not in ("mean", "max"):
        raise ValueError(f"aggregation must be 'mean' or 'max', got {how!r}")
    return table.groupby(by, sort=True).agg(label=("label", "max"), probability=("probability", how)).reset_index()
