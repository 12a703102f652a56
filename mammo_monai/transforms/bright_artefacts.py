"""Labels and film-edge strips anywhere on a digitised film: bright, sharp-edged, axis-aligned shapes.

What :class:`~mammo_monai.transforms.mask.BreastMask` removes before its opening, besides the film
border bands at the image edges: a label pressed against the skin line, or the edge of the film
inset from the image edge by black padding (mini-MIAS pads its films to a square), touches the
breast along a long stretch that no opening cuts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage


def _bright_lines(
    bright: np.ndarray, fill: float, max_width: float, step: float, clear: tuple[int, int] = (0, 0), gap: int = 3
) -> np.ndarray:
    """Columns of ``bright`` in runs at least ``fill`` bright, at most ``max_width`` of the width
    wide, whose bright fraction falls by ``step`` within ``gap`` px on both sides (a strip's sharp
    edges; tissue fades). A run within ``gap`` px of the image edge, or of a film border band
    ``clear`` px deep at either edge, is left to :func:`~mammo_monai.transforms.mask.film_border_bands`,
    which tells a border from a chest wall there."""
    prof = np.pad(bright.mean(axis=0), gap + 1)
    on = prof >= fill
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    out = np.zeros(len(prof), bool)
    for start, stop in zip(edges[::2] + 1, edges[1::2] + 1):
        level = prof[start:stop].mean()
        sharp = prof[start - 1 - gap] <= level - step and prof[stop + gap] <= level - step
        first, end = start - gap - 1, stop - gap - 1  # in the image's own columns
        inset = first >= clear[0] + gap and end <= bright.shape[1] - clear[1] - gap
        if stop - start <= max_width * bright.shape[1] and sharp and inset:
            out[start - 1 : stop + 1] = True  # and the strip's blurred rims
    return out[gap + 1 : -gap - 1]


def bright_artefacts(
    img8: np.ndarray,
    tissue: np.ndarray,
    level: float = 0.75,
    extent: float = 0.8,
    open_share: float = 0.25,
    max_label: float = 0.05,
    max_width: float = 0.1,
    bands: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Labels and film-edge strips anywhere in the image: bright, sharp-edged, axis-aligned shapes.

    A label, or the edge of the film inset from the image edge by black padding, can touch the
    breast along a long stretch, which no opening cuts and no search of the image edges finds.
    What sets them apart from tissue: nearly white (at least ``level`` of the 8-bit range) and
    straight. A strip is a run of rows or columns, at most ``max_width`` of the image across and
    clear of the image edge, that are at least half bright and whose bright share falls by 0.4
    within 3 px on both sides (:func:`_bright_lines`). A label
    is what else is bright: a rectangle (its area with the holes of its text filled is at least
    ``extent`` of its bounding box), at most ``max_label`` of the image and at least 1 % of its
    side thick (not a line), lying at the outline (at
    least ``open_share`` of a 2-px ring around it is not tissue, so bright tissue inside the breast
    is never touched).

    Args:
        img8: (H, W) 8-bit image, background at 0, film border bands already cleared.
        tissue: (H, W) tissue-or-brighter mask of it.
        bands: depth of the film border bands already cleared at each edge ({side: px}); a strip
            beside one is that border's business.

    Returns:
        (H, W) mask of the artefacts' pixels, with their blurred rims.
    """
    h, w = img8.shape
    bands = bands or {}
    bright = img8 >= int(level * 255)
    cols = _bright_lines(bright, 0.5, max_width, 0.4, (bands.get("left", 0), bands.get("right", 0)))
    rows = _bright_lines(bright.T, 0.5, max_width, 0.4, (bands.get("top", 0), bands.get("bottom", 0)))
    out = (cols[None, :] | rows[:, None]) & tissue
    labels, _ = ndimage.label(bright & ~out)
    sizes = np.bincount(labels.ravel())
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        sides = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        area = sides[0] * sides[1]
        if sizes[i] < 1e-3 * h * w or area * extent > max_label * h * w or min(sides) < 0.01 * min(h, w):
            continue  # a speck, too big for a label, or a line (the opening's business)
        shape = ndimage.binary_fill_holes(labels[box] == i)  # the label with its text
        if shape.sum() < extent * area:
            continue
        grown = tuple(slice(max(0, b.start - 2), b.stop + 2) for b in box)
        shape = np.pad(shape, [(b.start - g.start, g.stop - b.stop) for b, g in zip(box, grown)])
        shape = shape[: tissue[grown].shape[0], : tissue[grown].shape[1]]
        ring = ndimage.binary_dilation(shape, iterations=2) & ~shape
        if (~tissue[grown][ring]).mean() >= open_share:
            out[grown] |= ndimage.binary_dilation(shape)
    return out
