"""Lesion geometry for the manifest from the shapes datasets give: boxes and outlines.

Every adapter that reads a box or an outline writes the same columns (:data:`BOX_COLUMNS`, declared
once in :mod:`mammo_monai.data.manifest`), in the ORIGINAL image's pixels, rows counted from the top:

* ``center_row``, ``center_col``: the box's middle, or the mean of an outline's points (0.1 px);
* ``radius``: the circle that encloses the shape (half the box's diagonal, or the outline's farthest
  point from its centre), so a lesion disk covers the whole finding; never below :data:`MIN_RADIUS`;
* ``box_row0``, ``box_col0``, ``box_row1``, ``box_col1``: the box, HALF-OPEN like numpy slicing
  (``image[box_row0:box_row1, box_col0:box_col1]`` is the box, ``row1 = top + height``), so
  ``row0 <= row1`` and ``col0 <= col1``; equal (an empty box) only where the dataset gave a box of no
  width or one that clipping to the image leaves empty (VinDr boxes wholly outside the image). Datasets give their boxes in three forms, and each has its
  function, which converts to that one convention:

  - edges, end exclusive (:func:`box_geometry`, :func:`sized_box_geometry`): BCS-DBT (``X, Y, Width,
    Height``: ``row1 = Y + Height``), VinDr-Mammo (``xmin..xmax``: float edges in continuous pixel
    coordinates, clipped to the image's height and width), a CDD-CESM VIA ``rect``;
  - the first and last pixel at two opposite corners, both inside the box
    (:func:`pixel_box_geometry`, end = last + 1): OMI-DB ``X1, Y1, X2, Y2``, EMBED ``ROI_coords``
    (integer corners; whether EMBED's end is inclusive is not documented, and reading it as inclusive
    can only make a box one pixel too large, never cut off the lesion's last row);
  - an outline, its points pixels on the lesion's border (:func:`outline_geometry`, end = the largest
    point + 1): BCDR, CDD-CESM (polygon, polyline, ellipse, circle, point), INbreast (outlines and
    single calcification points).

  The centre and radius are computed from the shape as given (an inclusive box's centre is the middle
  of its two corner pixels); only the end edges are converted.

Every argument is keyword-only and named for an image axis (``rows``/``cols``, ``row0``/``col0``,
``top``/``left``): datasets give x before y, y before x, or a size instead of a corner, and a call with
the two axes swapped cannot be written by accident.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mammo_monai.data.manifest import BOX_COLUMNS, MIN_RADIUS

__all__ = [
    "BOX_COLUMNS",
    "MIN_RADIUS",
    "box_geometry",
    "sized_box_geometry",
    "pixel_box_geometry",
    "outline_geometry",
]


def box_geometry(*, row0: float, col0: float, row1: float, col1: float) -> dict[str, float]:
    """Manifest geometry of a box given by its edges, the end edges exclusive (``row1 = top + height``);
    the two corners in either order.

    Args:
        row0: row edge of one corner (original pixels, from the top).
        col0: column edge of the same corner.
        row1: row edge of the opposite corner.
        col1: column edge of the opposite corner.

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


def pixel_box_geometry(*, row0: float, col0: float, row1: float, col1: float) -> dict[str, float]:
    """Manifest geometry of a box given by the pixels at two opposite corners, both inside the box (the
    end inclusive, as OMI-DB's corners), in either order: the box written ends one past the last pixel.

    Args:
        row0: row of one corner pixel (original pixels, from the top).
        col0: column of the same corner pixel.
        row1: row of the opposite corner pixel.
        col1: column of the opposite corner pixel.

    Returns:
        ``center_row``, ``center_col`` (the middle of the two corner pixels), ``radius`` and the
        half-open box in :data:`BOX_COLUMNS`.
    """
    return _end_past_last(box_geometry(row0=row0, col0=col0, row1=row1, col1=col1))


def _end_past_last(geometry: dict[str, float]) -> dict[str, float]:
    """Turn a box whose end edges are its last pixels into the manifest's half-open box."""
    geometry["box_row1"] += 1.0
    geometry["box_col1"] += 1.0
    return geometry


def outline_geometry(*, rows: Sequence[float], cols: Sequence[float]) -> dict[str, float]:
    """Manifest geometry of an outline (or a single point): centre = the mean of its points, radius =
    its farthest point from that centre, box = the half-open box of its pixels (largest point + 1).

    Args:
        rows: the points' rows (original pixels, from the top).
        cols: the points' columns, as many as ``rows``.

    Raises:
        ValueError: no points, or ``rows`` and ``cols`` of different lengths.
    """
    r, c = np.asarray(rows, float).ravel(), np.asarray(cols, float).ravel()
    if not len(r) or len(r) != len(c):
        raise ValueError(f"an outline needs as many rows as columns, at least one (got {len(r)} and {len(c)})")
    out = pixel_box_geometry(row0=r.min(), col0=c.min(), row1=r.max(), col1=c.max())
    center_row, center_col = float(r.mean()), float(c.mean())
    out.update(
        center_row=round(center_row, 1),
        center_col=round(center_col, 1),
        radius=round(max(MIN_RADIUS, float(np.hypot(r - center_row, c - center_col).max())), 1),
    )
    return out
