"""Figures of a table of predictions: per image and per exam (mean and max of its images), AUC with
patient-resampled intervals, operating thresholds chosen on another split."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mammo_monai.evaluation.scores import aggregate_exams, binary_report, operating_point, pf1, tune_thresholds
from mammo_monai.io.exam_key import table_breast_key

#: the breast of each image, scored as this module's "exam" (:func:`~mammo_monai.io.exam_key.table_breast_key`)
exam_key = table_breast_key


def level_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Rows to score per level: ``image`` (one per image) and ``exam_mean`` / ``exam_max`` (one per
    exam, probability = mean or max of its images), each with ``label``, ``probability`` and, when
    the table has it, ``patient_id``."""
    table = table.assign(exam=exam_key(table))
    levels = {"image": table}
    for how in ("mean", "max"):
        exams = aggregate_exams(table, how=how)
        if "patient_id" in table.columns:
            exams["patient_id"] = exams["exam"].map(table.drop_duplicates("exam").set_index("exam")["patient_id"])
        levels[f"exam_{how}"] = exams
    return levels


def split_metrics(
    table: pd.DataFrame,
    tuning: pd.DataFrame | None = None,
    tuning_split: str = "val",
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, dict[str, Any]]:
    """:func:`~mammo_monai.evaluation.scores.binary_report` per level (see :func:`level_tables`) of the
    predictions in ``table``: AUC intervals resample patients (``patient_id``), and the Youden and
    best-pF1 thresholds are chosen on ``tuning`` (the validation predictions, same level) and
    applied to ``table``. Without ``tuning`` only the in-sample ("oracle") thresholds are reported."""
    tuned_levels = level_tables(tuning) if tuning is not None and not tuning.empty else {}
    reports = {}
    for level, rows in level_tables(table).items():
        tune = tuned_levels.get(level)
        thresholds = tune_thresholds(tune["label"], tune["probability"]) if tune is not None else None
        reports[level] = binary_report(
            rows["label"],
            rows["probability"],
            seed,
            n_boot,
            groups=rows.get("patient_id"),
            thresholds=thresholds,
            thresholds_from=f"split {tuning_split!r} ({len(tune) if tune is not None else 0} rows)",
        )
    return reports


def stored_decision(table: pd.DataFrame, selection: dict[str, Any]) -> dict[str, Any]:
    """The decision of a bundle's declared decision rule (e.g. the pF1 selection stored with the weights:
    ``{"aggregation": "mean"|"max", "threshold": t, ...}`` chosen on validation at training time): per
    breast (``exam``), the aggregated probability called positive at ``t``.

    Returns pF1 raw (probabilities as they are) and thresholded, and the operating point
    (sensitivity, specificity, recall rate) at the stored threshold.
    """
    how, threshold = selection["aggregation"], float(selection["threshold"])
    breasts = aggregate_exams(table.assign(exam=exam_key(table)), how=how)
    y, p = breasts["label"].to_numpy(), breasts["probability"].to_numpy()
    return {
        "level": f"breast ({how} of its views)",
        "n": int(len(breasts)),
        "positives": int(y.sum()),
        "threshold": threshold,
        "threshold_from": "stored with the model (validation pF1 at training time)",
        "pf1_raw": pf1(y, p),
        "pf1": pf1(y, p >= threshold),
        **{k: v for k, v in operating_point(y, p, threshold).items() if k != "threshold"},
        "recall_rate": float((p >= threshold).mean()) if len(p) else 0.0,  # the fraction of breasts recalled
    }
