"""``predict --dicom-out``: for each input DICOM that was scored, a Structured Report of its scores and, where a
lesion probability map on its original grid exists, a Segmentation (:mod:`mammo_monai.io.dicom_outputs`).

The scores are read from ``predict``'s own table, so the SR says what the CSV says: the calibrated
probability and ``decision@<point>`` columns of a calibrated bundle, else the raw probability (and the
bundle's stored ``decision``, if it has one), for the image and for its breast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.evaluation.calibrated_columns import decision_column
from mammo_monai.io.dicom_outputs import ReportScores, Score, StandIns, write_report, write_segmentation
from mammo_monai.io.errors import describe_error
from mammo_monai.io.exam_key import breast_key
from mammo_monai.io.reader import is_dicom

__all__ = ["report_scores", "write_dicom_outputs"]

#: the decision of a bundle's stored operating point (no calibration), as the SR names it
STORED_POINT = "stored operating point"
_UID = re.compile(r"\d+(?:\.\d+){3,}")


def _thresholds(opened: Any) -> dict[str, float]:
    if opened.calibration is not None:
        return {name: float(p.threshold) for name, p in opened.calibration.operating_points.items()}
    threshold = getattr(opened.decision_rule, "threshold", None)
    return {STORED_POINT: float(threshold)} if threshold is not None else {}


def _score(row: pd.Series, calibrated: bool, points: Sequence[str]) -> Score:
    probability = row["probability_calibrated"] if calibrated else row["probability"]
    columns = {p: decision_column(p) if calibrated else "decision" for p in points}
    decisions = {p: int(row[c]) for p, c in columns.items() if c in row and pd.notna(row[c])}
    return Score(float(probability), decisions)


def report_scores(table: pd.DataFrame, file: str, opened: Any) -> ReportScores | None:
    """The image's and its breast's scores in ``predict``'s ``table`` (None when the image was not scored)."""
    calibrated = "probability_calibrated" in table
    thresholds = _thresholds(opened)
    rows = table[(table["level"] == "image") & (table["file"] == file) & (table["status"] == "ok")]
    if rows.empty:
        return None
    image = rows.iloc[0]
    laterality = str(image.get("laterality", "") or "")
    breast = table[(table["level"] == "breast") & (table["breast"] == breast_key(image["exam"], laterality))]
    return ReportScores(
        image=_score(image, calibrated, list(thresholds)),
        breast=_score(breast.iloc[0], calibrated, list(thresholds)) if not breast.empty else None,
        laterality=laterality,
        views=int(breast.iloc[0]["n_views"]) if not breast.empty else 1,
        calibration=opened.calibration.method if calibrated else None,
        thresholds=thresholds,
    )


def _scrubbed(message: str) -> str:
    """An error line without a UID (a library's message may quote one of the source's)."""
    return _UID.sub("<UID>", message)


def write_dicom_outputs(
    table: pd.DataFrame,
    files: Sequence[tuple[Path, str]],
    maps: Mapping[str, np.ndarray],
    out_dir: str | os.PathLike,
    opened: Any,
    anonymous: bool = False,
) -> tuple[dict[str, int], list[str]]:
    """Write ``<name>_sr.dcm`` for every scored DICOM of ``files`` ((path, unique name) pairs) and
    ``<name>_seg.dcm`` for those with a map in ``maps`` (unique name -> (rows, cols) P(lesion) on the
    original grid) into ``out_dir``. A file that fails is skipped; returns how many of each were written
    (``{"sr": n, "seg": m}``) and one error line per failed file.
    ``anonymous``: no source identifier in any output (one stand-in study per source study for this run)."""
    out_dir = Path(out_dir)
    stand_ins = StandIns() if anonymous else None
    model = (str(opened.name), str(opened.version))
    errors: list[str] = []
    written = {"sr": 0, "seg": 0}
    for path, name in files:
        if not is_dicom(path):
            continue
        scores = report_scores(table, str(path), opened)
        if scores is None and name not in maps:
            continue  # not scored: its error row says why
        try:
            if scores is not None:
                write_report(path, scores, out_dir / f"{name}_sr.dcm", *model, anonymous, stand_ins)
                written["sr"] += 1
            if name in maps:
                write_segmentation(path, maps[name], out_dir / f"{name}_seg.dcm", *model, anonymous, stand_ins)
                written["seg"] += 1
        except Exception as err:
            message = describe_error(err)
            message = message.removeprefix(f"{path}: ")
            errors.append(f"error: {path}: {_scrubbed(message)} (DICOM output not written)")
    return written, errors
