"""What the adapters of the newer datasets share: finding their tables, reading spreadsheets, and lesion
geometry from boxes and outlines in the manifest's columns."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.data.adapters.base import DatasetTableError, read_table, require_columns

#: extra lesion columns that keep a box as the dataset gave it (original pixels, rows from the top)
BOX_COLUMNS = ["box_row0", "box_col0", "box_row1", "box_col1"]


def find_table(root: Path, names: Sequence[str], depth: int = 4) -> Path | None:
    """The first of ``names`` found in ``root`` or up to ``depth`` folders below it (a TCIA
    ``manifest-*`` or PhysioNet ``physionet.org/files/<name>/<version>`` wrapper), shallowest first."""
    for level in range(depth + 1):
        prefix = "*/" * level
        for name in names:
            found = sorted(root.glob(prefix + name))
            if found:
                return found[0]
    return None


def read_sheet(
    path: str | os.PathLike, required: Iterable[str] = (), sheet: str | None = None, **options: Any
) -> pd.DataFrame:
    """A ``.xlsx`` (the sheet named ``sheet`` when there is one, else the first; via openpyxl) or
    ``.csv`` table as strings, column names stripped.

    Raises:
        DatasetTableError: the file cannot be read or lacks a column of ``required``.
    """
    if Path(path).suffix.lower() in (".xlsx", ".xls"):
        try:
            with pd.ExcelFile(path, engine="openpyxl") as book:
                name = sheet if sheet in book.sheet_names else 0
                table = pd.read_excel(book, sheet_name=name, dtype=str, keep_default_na=False, **options)
        except Exception as err:  # zipfile.BadZipFile, openpyxl's own errors, a missing openpyxl: all one line
            first = (str(err).splitlines() or [""])[0]
            raise DatasetTableError(f"{path}: cannot be read as a spreadsheet ({type(err).__name__}: {first})") from err
        table = table.fillna("").astype(str)
        table.columns = [str(c).strip() for c in table.columns]
        require_columns(table, required, path)
        return table
    return read_table(path, required=required, dtype=str, keep_default_na=False, **options)


def number(value: Any) -> float:
    """``value`` as a float; NaN when empty or not a number."""
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return float("nan")


def box_geometry(row0: float, col0: float, row1: float, col1: float) -> dict[str, float]:
    """Manifest geometry of a box (original pixels): its centre, the radius of the circle through its
    corners (so the lesion disk covers the whole box) and the box itself (:data:`BOX_COLUMNS`)."""
    r0, r1 = sorted((float(row0), float(row1)))
    c0, c1 = sorted((float(col0), float(col1)))
    return {
        "center_row": round((r0 + r1) / 2, 1),
        "center_col": round((c0 + c1) / 2, 1),
        "radius": round(max(1.0, float(np.hypot(r1 - r0, c1 - c0)) / 2), 1),
        "box_row0": r0,
        "box_col0": c0,
        "box_row1": r1,
        "box_col1": c1,
    }


def outline_geometry(rows: Sequence[float], cols: Sequence[float]) -> dict[str, float]:
    """Manifest geometry of an outline: centre = mean of its points, radius = the farthest point (at
    least 3 px, as for INbreast's single-point ROIs), and its bounding box."""
    pts = np.column_stack([np.asarray(rows, float), np.asarray(cols, float)])
    center = pts.mean(0)
    radius = max(3.0, float(np.hypot(*(pts - center).T).max()))
    return {
        "center_row": round(float(center[0]), 1),
        "center_col": round(float(center[1]), 1),
        "radius": round(radius, 1),
        "box_row0": float(pts[:, 0].min()),
        "box_col0": float(pts[:, 1].min()),
        "box_row1": float(pts[:, 0].max()),
        "box_col1": float(pts[:, 1].max()),
    }
