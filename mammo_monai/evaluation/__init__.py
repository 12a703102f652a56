"""Scores of predictions: AUC with patient-resampled intervals, pF1, operating thresholds, exam
aggregation, the Ignite metrics of validation, and plots."""

from mammo_monai.evaluation.metrics import (
    PresentClassROCAUC,
    positive_probability,
    pred_label,
    pred_target,
    prob_label,
    seg_pred_label,
    sigmoid_label,
)
from mammo_monai.evaluation.report import exam_key, level_tables, split_metrics
from mammo_monai.evaluation.scores import aggregate_exams, best_pf1, binary_report, pf1, tune_thresholds

__all__ = [
    "PresentClassROCAUC",
    "aggregate_exams",
    "best_pf1",
    "binary_report",
    "exam_key",
    "level_tables",
    "pf1",
    "positive_probability",
    "pred_label",
    "pred_target",
    "pred_target",
    "prob_label",
    "seg_pred_label",
    "seg_pred_label",
    "sigmoid_label",
    "split_metrics",
    "tune_thresholds",
]
