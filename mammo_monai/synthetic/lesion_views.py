"""One small synthetic view with its lesions and their truth (boxes and outlines in the stored image's
pixels), shared by the generators of the public-dataset miniatures (VinDr-Mammo, CMMD, CDD-CESM, EMBED)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.measure import find_contours

from mammo_monai.synthetic.phantom import Lesion, breast_tissue, draw_lesion


@dataclass
class DrawnLesion:
    """Truth of one drawn lesion, in the STORED image (after the right-breast mirror): ``box`` is
    (row0, col0, row1, col1), inclusive pixel bounds of its ROI mask; ``outline`` (N, 2) rows/cols of
    the mask's contour."""

    kind: str  # "mass" or "calc"
    malignant: bool
    box: tuple[int, int, int, int]
    outline: np.ndarray = field(repr=False)


def render_view(
    rng: np.random.Generator,
    size: tuple[int, int],
    view: str,
    side: str,
    lesions: list[tuple[str, bool]],
    density: int | None = None,
) -> tuple[np.ndarray, list[DrawnLesion]]:
    """A [0, 1] float view with one lesion per ``(kind, malignant)`` of ``lesions`` (kind "mass" or
    "calc"), the chest wall on the left for ``side`` "L" and on the right for "R" (as displayed).

    Lesions are drawn larger than at full resolution (a few percent of the image height) so that a
    256-row miniature still shows them.
    """
    img, _, interior = breast_tissue(rng, size, view, density or int(rng.integers(1, 5)))
    drawn = []
    spots = np.argwhere(interior)
    for kind, malignant in lesions:
        row, col = spots[rng.integers(len(spots))]
        radius = size[0] * (rng.uniform(0.04, 0.07) if kind == "mass" else rng.uniform(0.04, 0.06))
        phantom = Lesion(
            "mass" if kind == "mass" else "calcification",
            malignant,
            (float(row), float(col)),
            radius,
            0.12,
            int(rng.integers(2**31)),
            scale=4.0,
        )
        mask = draw_lesion(img, phantom)
        drawn.append((kind, malignant, mask))
    if side == "R":
        img = img[:, ::-1].copy()
    out = []
    for kind, malignant, mask in drawn:
        mask = mask[:, ::-1] if side == "R" else mask
        rows, cols = np.nonzero(mask)
        contour = max(find_contours(np.pad(mask, 1).astype(float), 0.5), key=len) - 1
        out.append(
            DrawnLesion(kind, malignant, (int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())), contour)
        )
    return np.clip(img, 0, 1), out


def to_uint(img: np.ndarray, bits: int) -> np.ndarray:
    """A [0, 1] image as unsigned integers of ``bits`` (uint8 up to 8 bits, else uint16)."""
    top = 2**bits - 1
    return np.round(np.clip(img, 0, 1) * top).astype(np.uint8 if bits <= 8 else np.uint16)
