"""``predict``'s tables beside its per-image CSV: per breast, per exam, the aggregation they used, and the
NYU metarepository's tables (:mod:`~mammo_monai.evaluation.nyu_tables`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.evaluation.exam_rows import aggregation_record, breast_table, exam_table, operating_thresholds
from mammo_monai.evaluation.nyu_tables import (
    BREAST_TABLE,
    IMAGE_TABLE,
    exam_list_images,
    exam_list_tables,
    folder_tables,
    read_exam_list,
)
from mammo_monai.io.atomic import write_csv, write_json


def table_paths(out_csv: str | os.PathLike) -> dict[str, Path]:
    """Where the tables of ``out_csv`` go: ``<stem>_breasts.csv``, ``<stem>_exams.csv``, ``<stem>.json``
    and the metarepository's two tables, all in ``out_csv``'s folder."""
    out = Path(out_csv)
    return {
        "breasts": out.with_name(f"{out.stem}_breasts.csv"),
        "exams": out.with_name(f"{out.stem}_exams.csv"),
        "record": out.with_name(f"{out.stem}.json"),
        "nyu_images": out.with_name(IMAGE_TABLE),
        "nyu_breasts": out.with_name(BREAST_TABLE),
    }


def exam_list_files(
    exam_list: str | os.PathLike, inputs: str | os.PathLike | Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The exams of a metarepository ``data.pkl`` and ``{image name: file}`` of the images it names, found
    under the first of ``inputs`` (the images' folder); one-line :class:`ExamListError` otherwise."""
    exams = read_exam_list(exam_list)
    folder = inputs if isinstance(inputs, (str, os.PathLike)) else inputs[0]
    return exams, exam_list_images(exams, folder, exam_list)


def write_prediction_tables(
    table: pd.DataFrame,
    rows: Sequence[Mapping[str, Any]],
    out_csv: str | os.PathLike,
    opened: Any,
    exams: Sequence[Mapping[str, Any]] | None = None,
    named: Mapping[str, str] | None = None,
    nyu: bool = False,
) -> dict[str, Any]:
    """Write the breast and exam tables of ``predict``'s image ``rows`` beside ``out_csv``, with their
    aggregation as JSON (:func:`~mammo_monai.evaluation.exam_rows.aggregation_record`), and with ``exams``
    (an exam list; ``named``: image name -> file) or ``nyu``, the metarepository's tables.

    Breasts aggregate by the bundle's declared ``decision_rule`` (mean by default); ``decision@<name>``
    columns follow ``opened.calibration.operating_points`` when the bundle carries them.

    Returns:
        The JSON record written.
    """
    images = pd.DataFrame(list(rows))
    if images.empty or "status" not in images:
        images = table[table["level"] == "image"]
    images = images[images["status"] == "ok"]
    rule = opened.decision_rule
    calibration = getattr(opened, "calibration", None)
    points = operating_thresholds(getattr(calibration, "operating_points", None))
    calibrate = getattr(calibration, "apply", None)  # a calibration with only operating points: raw scores
    paths = table_paths(out_csv)
    breasts = breast_table(images, rule.aggregation, points, calibrate) if not images.empty else breast_table(images)
    exam_rows = exam_table(breasts)
    write_csv(breasts, paths["breasts"])
    write_csv(exam_rows, paths["exams"])
    grouping = images["grouped_by"].value_counts().to_dict() if not images.empty else {}
    record = {
        "bundle": f"{opened.name} {opened.version}",
        "aggregation": aggregation_record(rule.aggregation, rule.source, grouping),
        "operating_points": points,
        "tables": {k: p.name for k, p in paths.items() if k in ("breasts", "exams")},
    }
    if exams is not None or nyu:
        if exams is not None:
            probability = dict(zip(images["file"].astype(str), images["probability"].astype(float)))
            nyu_images, nyu_breasts = exam_list_tables(exams, named or {}, probability, rule.aggregation)
        else:
            nyu_images, nyu_breasts = folder_tables(images, exam_rows)
        write_csv(nyu_images, paths["nyu_images"])
        write_csv(nyu_breasts, paths["nyu_breasts"])
        record["tables"].update(nyu_images=paths["nyu_images"].name, nyu_breasts=paths["nyu_breasts"].name)
    write_json(record, paths["record"])
    return record
