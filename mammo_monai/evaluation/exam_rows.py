"""Breast and exam rows of a table of image predictions (``predict``'s CSV): every breast and every
exam gets its row, even of one image."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.io.exam_key import breast_key

#: the columns of the rows :func:`breast_and_exam_rows` adds, besides ``level``.
SUMMARY_COLUMNS = ["patient", "exam", "breast", "laterality", "n_views", "probability", "grouped_by"]


def breast_and_exam_rows(images: pd.DataFrame, how: str = "mean", threshold: float | None = None) -> pd.DataFrame:
    """One row per breast and one per exam of the predicted images.

    A breast (``<exam>_<side>``: :func:`~mammo_monai.io.exam_key.breast_key`) scores the ``how``
    ("mean" or "max") of its images' probabilities; an exam scores its most suspicious breast (the max).
    ``n_views`` counts the images behind each row.

    Args:
        images: one row per predicted image with ``exam``, ``patient``, ``laterality``, ``probability``
            and ``grouped_by`` (how the exam was found).
        how: the breast's aggregation of its views.
        threshold: a stored operating point: adds ``decision`` (1: recall) to breasts (probability
            ``>= threshold``) and exams (any breast recalled).

    Returns:
        The breast rows (``level`` "breast") then the exam rows (``level`` "exam"), each sorted by key.
    """
    if how not in ("mean", "max"):
        raise ValueError(f"aggregation must be 'mean' or 'max', got {how!r}")
    columns = ["level", *SUMMARY_COLUMNS, *(["decision"] if threshold is not None else [])]
    if images.empty:
        return pd.DataFrame(columns=columns)
    images = images.assign(breast=breast_key(images["exam"], images["laterality"]))
    first = {c: (c, "first") for c in ("exam", "patient", "laterality", "grouped_by")}
    breasts = (
        images.groupby("breast", sort=True)
        .agg(**first, n_views=("probability", "size"), probability=("probability", how))
        .reset_index()
    )
    exams = (
        breasts.groupby("exam", sort=True)
        .agg(
            patient=("patient", "first"),
            grouped_by=("grouped_by", "first"),
            n_views=("n_views", "sum"),
            probability=("probability", "max"),
        )
        .reset_index()
    )
    table = pd.concat([breasts.assign(level="breast"), exams.assign(level="exam")], ignore_index=True)
    if threshold is not None:
        table["decision"] = (table["probability"] >= float(threshold)).astype(int)
    return table.reindex(columns=columns)


#: the per-breast table's columns (:func:`breast_table`), then one ``decision@<name>`` per operating point.
BREAST_COLUMNS = ["patient", "exam", "laterality", "views_used", "n_views", "probability", "grouped_by"]
#: the per-exam table's columns (:func:`exam_table`).
EXAM_COLUMNS = [
    "patient",
    "exam",
    "left_malignant",
    "right_malignant",
    "left_benign",
    "right_benign",
    "grouped_by",
]
_VIEW_ORDER = {"CC": 0, "MLO": 1}


def operating_thresholds(points: Any) -> dict[str, float]:
    """``{name: threshold}`` of a bundle's named operating points: None (none), or a mapping of a name to a
    float or to an object with a ``threshold`` attribute (or a ``"threshold"`` key)."""
    if not points:
        return {}
    out = {}
    for name, point in dict(points).items():
        value = getattr(point, "threshold", point)
        out[str(name)] = float(value["threshold"] if isinstance(value, Mapping) else value)
    return out


def views_used(views: pd.Series) -> str:
    """The distinct views behind a breast, CC first then MLO then the rest: ``"CC+MLO"``."""
    found = {str(v) for v in views if isinstance(v, str) and v}
    return "+".join(sorted(found, key=lambda v: (_VIEW_ORDER.get(v, 2), v)))


def breast_table(
    images: pd.DataFrame,
    how: str = "mean",
    operating_points: Mapping[str, float] | None = None,
    calibrate: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per breast (:data:`BREAST_COLUMNS`) of the predicted images (``status`` "ok").

    ``probability`` is the ``how`` ("mean" or "max") of its views' raw probabilities; an image table with a
    ``benign`` column (a model with benign classes) gives each breast its ``benign`` the same way. With
    ``calibrate`` (a bundle's calibration), ``probability_calibrated`` is the calibrated breast probability
    (the raw views aggregated first, then calibrated, as ``predict``'s own breast rows are), which the
    decisions then use. ``decision@<name>`` is 1 (recall) where the breast's probability reaches that
    operating point.
    """
    if how not in ("mean", "max"):
        raise ValueError(f"aggregation must be 'mean' or 'max', got {how!r}")
    points = dict(operating_points or {})
    extra = [c for c in ("benign",) if c in images.columns]
    calibrated = ["probability_calibrated"] if calibrate is not None else []
    columns = [*BREAST_COLUMNS, *calibrated, *extra, *(f"decision@{name}" for name in points)]
    ok = images[images["status"] == "ok"] if "status" in images.columns else images
    if ok.empty:
        return pd.DataFrame(columns=columns)
    ok = ok.assign(breast=breast_key(ok["exam"], ok["laterality"]), view=ok.get("view", ""))
    first = {c: (c, "first") for c in ("patient", "exam", "laterality", "grouped_by")}
    breasts = (
        ok.groupby("breast", sort=True)
        .agg(
            **first,
            views_used=("view", views_used),
            n_views=("probability", "size"),
            probability=("probability", how),
            **{c: (c, how) for c in extra},
        )
        .reset_index(drop=True)
    )
    if calibrate is not None:
        breasts["probability_calibrated"] = calibrate(breasts["probability"].to_numpy(dtype=float))
    scored = breasts["probability_calibrated"] if calibrate is not None else breasts["probability"]
    for name, threshold in points.items():
        breasts[f"decision@{name}"] = (scored >= threshold).astype(int)
    return breasts.reindex(columns=columns)


def exam_table(breasts: pd.DataFrame) -> pd.DataFrame:
    """One row per exam (:data:`EXAM_COLUMNS`) of the :func:`breast_table`: each side's P(malignant) and
    P(benign): the breast's ``benign`` when the model has benign classes, else 1 - P(malignant). A side
    with no image stays empty (NaN), never a made-up number."""
    if breasts.empty:
        return pd.DataFrame(columns=EXAM_COLUMNS)
    benign = breasts["benign"] if "benign" in breasts else 1.0 - breasts["probability"]
    sides = breasts.assign(malignant=breasts["probability"], benign=benign)
    wide = sides.pivot_table(
        index="exam", columns="laterality", values=["malignant", "benign"], aggfunc="first", dropna=False
    )
    exams = sides.groupby("exam", sort=True).agg(patient=("patient", "first"), grouped_by=("grouped_by", "first"))
    for side, name in (("L", "left"), ("R", "right")):
        for kind in ("malignant", "benign"):
            col = (kind, side)
            exams[f"{name}_{kind}"] = wide[col] if col in wide.columns else float("nan")
    return exams.reset_index().reindex(columns=EXAM_COLUMNS)


def aggregation_record(rule_aggregation: str, rule_source: str, grouping: Mapping[str, int]) -> dict[str, Any]:
    """What the tables were aggregated with (``predict``'s JSON sidecar): per breast, per exam, and how
    many images each grouping rule (``grouped_by``) placed."""
    return {
        "breast": f"{rule_aggregation} of its views' probabilities"
        + (f" (the bundle's decision_rule, {rule_source})" if rule_source != "none" else " (default)"),
        "exam": "left and right breasts side by side; the combined CSV's exam row is its most suspicious breast (max)",
        "benign": "the model's benign classes where it has them, else 1 - P(malignant) of the breast",
        "grouping": dict(grouping),
    }
