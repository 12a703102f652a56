"""Lesion rows from the shapes datasets give: boxes (BCS-DBT, OMI-DB) and outlines (BCDR).

The manifest keeps a lesion as a centre and a radius in the ORIGINAL image's pixels, rows from the
top (:mod:`mammo_monai.data.manifest`); the radius is that of the circle enclosing the shape (the
farthest outline point, or half the box's diagonal), as the INbreast adapter does for its outlines.
The box itself is kept in ``box_top``, ``box_left``, ``box_height`` and ``box_width``.
"""

from __future__ import annotations

import numpy as np

#: the smallest radius written: single-point marks and one-pixel boxes still get a patch
MIN_RADIUS = 3.0


def box_geometry(top: float, left: float, height: float, width: float) -> dict[str, float]:
    """Centre, enclosing radius and the box itself, for a box given by its top-left corner and size."""
    top, left, height, width = (float(v) for v in (top, left, height, width))
    return {
        "center_row": round(top + height / 2, 1),
        "center_col": round(left + width / 2, 1),
        "radius": round(max(MIN_RADIUS, float(np.hypot(height, width)) / 2), 1),
        "box_top": top,
        "box_left": left,
        "box_height": height,
        "box_width": width,
    }


def corners_geometry(x1: float, y1: float, x2: float, y2: float) -> dict[str, float]:
    """:func:`box_geometry` of the box spanned by two opposite corners (x = column, y = row), in any order."""
    left, right = sorted((float(x1), float(x2)))
    top, bottom = sorted((float(y1), float(y2)))
    return box_geometry(top, left, bottom - top, right - left)


def outline_geometry(cols: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    """Centre (mean of the points), enclosing radius (farthest point) and bounding box of an outline."""
    cols, rows = np.asarray(cols, float), np.asarray(rows, float)
    r0, c0 = float(rows.mean()), float(cols.mean())
    out = box_geometry(rows.min(), cols.min(), np.ptp(rows), np.ptp(cols))
    out.update(
        center_row=round(r0, 1),
        center_col=round(c0, 1),
        radius=round(max(MIN_RADIUS, float(np.hypot(rows - r0, cols - c0).max())), 1),
    )
    return out
