"""One synthetic view with lesions, in display orientation, plus each lesion's mask: the common step of
the tree writers for datasets whose truth is boxes or outlines (BCS-DBT, BCDR, OMI-DB, KAU-BCMD)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.measure import find_contours

from mammo_monai.synthetic.phantom import Lesion, breast_tissue, draw_lesion


@dataclass
class DrawnLesion:
    """A lesion drawn on a view: its kind, pathology and mask in the view's (display) pixels."""

    kind: str  # "mass" or "calcification"
    malignant: bool
    mask: np.ndarray

    def box(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the mask's bounding box."""
        rows, cols = np.nonzero(self.mask)
        return int(rows.min()), int(cols.min()), int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1

    def outline(self) -> tuple[np.ndarray, np.ndarray]:
        """(columns, rows) of the mask's longest contour, as whole pixels."""
        contour = max(find_contours(self.mask.astype(float), 0.5), key=len)
        return np.round(contour[:, 1]).astype(int), np.round(contour[:, 0]).astype(int)


def render_view(
    rng: np.random.Generator,
    shape: tuple[int, int],
    side: str,
    view: str,
    lesions: list[tuple[str, bool]],
    density: int = 2,
) -> tuple[np.ndarray, list[DrawnLesion]]:
    """A float image in [0, 1] with the chest wall on the left for "L" and on the right for "R" (as
    mammograms are displayed), and one :class:`DrawnLesion` per ``(kind, malignant)`` of ``lesions``,
    placed at random inside the breast and sized for ``shape``."""
    img, _, interior = breast_tissue(rng, shape, view, density)
    inner = np.argwhere(interior)
    drawn = []
    for kind, malignant in lesions:
        center = inner[rng.integers(len(inner))]
        size = shape[0] * (rng.uniform(0.05, 0.08) if kind == "mass" else rng.uniform(0.06, 0.09))
        spec = Lesion(
            kind, malignant, (float(center[0]), float(center[1])), size, 0.25, seed=int(rng.integers(1 << 30))
        )
        mask = draw_lesion(img, spec)
        drawn.append(DrawnLesion(kind, malignant, mask))
    img = np.clip(img, 0, 1)
    if side == "R":
        img = img[:, ::-1]
        for d in drawn:
            d.mask = d.mask[:, ::-1]
    return np.ascontiguousarray(img), drawn
