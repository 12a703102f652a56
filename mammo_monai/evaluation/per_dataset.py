"""Figures per dataset of a joined manifest (``prepare --dataset A:ROOT,B:ROOT``): the same report as the
whole split's (:func:`~mammo_monai.evaluation.report.split_metrics`) for each dataset's rows, at the
thresholds chosen on the whole validation split, so that a model judged on a dataset it never saw is
judged at the operating points it would be deployed with."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mammo_monai.evaluation.report import split_metrics


def per_dataset_metrics(
    table: pd.DataFrame,
    tuning: pd.DataFrame | None = None,
    tuning_split: str = "val",
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, dict[str, Any]]:
    """``{"per_dataset": {name: split_metrics of its rows}}`` when ``table`` (one split's predictions) holds
    images of two or more datasets; ``{}`` otherwise (the overall figures are then that dataset's).

    Args:
        table: predictions with ``dataset``, ``label``, ``probability`` (and ``patient_id``, ``laterality``, ...).
        tuning: the validation predictions, all datasets: the thresholds every dataset is scored at.
    """
    if "dataset" not in table.columns or table["dataset"].nunique() < 2:
        return {}
    return {
        "per_dataset": {
            str(name): {
                "n": int(len(rows)),
                **split_metrics(rows.reset_index(drop=True), tuning, tuning_split, seed, n_boot),
            }
            for name, rows in table.groupby("dataset", sort=True)
        }
    }
