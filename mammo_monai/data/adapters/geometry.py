"""Lesion geometry for the manifest from the shapes datasets give: boxes and outlines.

Every adapter that reads a box or an outline writes the same columns (:data:`BOX_COLUMNS`, declared
once in :mod:`mammo_monai.data.manifest`), in the ORIGINAL image's pixels, rows counted from the top:

* ``center_row``, ``center_col``: the box's middle, or the mean of an outline's points (0.1 px);
* ``radius``: the circle that encloses the shape (half the box's diagonal, or the outline's farthest
  point from its centre), so a lesion disk covers the whole finding; never below :data:`MIN_RADIUS`;
* ``box_row0``, ``box_col0``, ``box_row1``, ``box_col1``: the box, ``row0 <= row1`` and ``col0 <= col1``.
  Its edges are the dataset's own: corners as stored (VinDr-Mammo ``xmin..xmax``, EMBED ``ROI_coords``,
  OMI-DB ``X1..Y2``); ``row1 = top + height`` for a top-left + size box (BCS-DBT), the end edge as the
  dataset counts it; the first and last point for an outline (BCDR, CDD-CESM, INbreast). Nothing is
  shifted by a half or one pixel: the box is what the dataset published.

Every argument is keyword-only and named for an image axis (``rows``/``cols``, ``row0``/``col0``,
``top``/``left``): datasets give x before y, y before x, or a size instead of a corner, and a call with
the two axes swapped cannot be written by accident.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mammo_monai.data.manifest import BOX_COLUMNS

__all__ = ["BOX_COLUMNS", "MIN_RADIUS", "box_geometry", "sized_box_geometry", "outline_geometry"]

#: The smallest radius written (px). A single-point mark (INbreast's calcification points, a VIA
#: ``point`` in CDD-CESM) or a box clipped to a line would otherwise give a radius of 0 or 1: a disk
#: that no patch-overlap test accepts. 3 px is the radius the INbreast adapter always gave its point
#: marks and the one the lesion cache assumes for a lesion without one (``data/cache.py``), so one rule
#: now holds for boxes and outlines alike.
MIN_RADIUS = 3.0


def box_geometry(*, row0: float, col0: float, row1: float, col1: float) -> dict[str, float]:
    """Manifest geometry of a box given by two opposite corners, in either order.

    Args:
        row0: row of one corner (original pixels, from the top).
        col0: column of the same corner.
        row1: row of the opposite corner.
        col1: column of the opposite corner.

    Returns:
        ``center_row``, ``center_col``, ``radius`` and the sorted box in :data:`BOX_COLUMNS`.
    """
    r0, r1 = sorted((float(row0), float(row1)))
    c0, c1 = sorted((float(col0), float(col1)))
    return {
        "center_row": round((r0 + r1) / 2, 1),
        "center_col": round((c0 + c1) / 2, 1),
        "radius": round(max(MIN_RADIUS, float(np.hypot(r1 - r0, c1 - c0)) / 2), 1),
        "box_row0": r0,
        "box_col0": c0,
        "box_row1": r1,
        "box_col1": c1,
    }


def sized_box_geometry(*, top: float, left: float, height: float, width: float) -> dict[str, float]:
    """:func:`box_geometry` of a box given by its top-left corner and its size (``row1 = top + height``)."""
    top, left = float(top), float(left)
    return box_geometry(row0=top, col0=left, row1=top + float(height), col1=left + float(width))


def outline_geometry(*, rows: Sequence[float], cols: Sequence[float]) -> dict[str, float]:
    """Manifest geometry of an outline (or a single point): centre = the mean of its points, radius =
    its farthest point from that centre, box = its bounding box.

    Args:
        rows: the points' rows (original pixels, from the top).
        cols: the points' columns, as many as ``rows``.

    Raises:
        ValueError: no points, or ``rows`` and ``cols`` of different lengths.
    """
    r, c = np.asarray(rows, float).ravel(), np.asarray(cols, float).ravel()
    if not len(r) or len(r) != len(c):
        raise ValueError(f"an outline needs as many rows as columns, at least one (got {len(r)} and {len(c)})")
    out = box_geometry(row0=r.min(), col0=c.min(), row1=r.max(), col1=c.max())
    center_row, center_col = float(r.mean()), float(c.mean())
    out.update(
        center_row=round(center_row, 1),
        center_col=round(center_col, 1),
        radius=round(max(MIN_RADIUS, float(np.hypot(r - center_row, c - center_col).max())), 1),
    )
    return out
