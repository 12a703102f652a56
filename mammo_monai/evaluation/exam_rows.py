"""Breast and exam rows of a table of image predictions (``predict``'s CSV): every breast and every
exam gets its row, even of one image."""

from __future__ import annotations

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
