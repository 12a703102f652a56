"""Synthetic films with lesions at known places, as loaded images: for checking where outputs land.

A film is drawn chest wall left (:func:`~mammo_monai.synthetic.phantom.breast_tissue`), its masses drawn
at random interior positions, and a right breast mirrored as it is stored. The image is a ``MetaTensor``
(1, H, W) with the metadata a reader gives (laterality, pixel spacing, original shape), so the
preprocessing pipeline can run on it with ``load=False``; each lesion's mask is at the film's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from monai.data import MetaTensor

from mammo_monai.synthetic.phantom import Lesion, breast_tissue, draw_lesion


@dataclass
class LesionFilm:
    """A loaded film: ``image`` (1, H, W) MetaTensor, the lesion ``masks`` (H, W) and their ``centres``
    ((row, col) centroids of the masks, as stored: a right breast's are mirrored with it)."""

    image: MetaTensor
    masks: list[np.ndarray]
    centres: np.ndarray


def film_with_lesions(
    seed: int,
    shape: tuple[int, int] = (2600, 1900),
    side: str = "L",
    n_lesions: int = 3,
    pixel_spacing: tuple[float, float] = (0.07, 0.07),
) -> LesionFilm:
    """A CC film of ``shape`` with ``n_lesions`` masses (radius ~1.5 % of the height) inside the breast.

    Args:
        seed: draws the breast and the lesions.
        side: "L" (stored chest wall left) or "R" (mirrored: chest wall right).
        pixel_spacing: recorded in the meta (mm per row, per column).
    """
    rng = np.random.default_rng(seed)
    img, _, interior = breast_tissue(rng, shape, "CC", 2)
    spots = np.argwhere(interior)
    radius = 0.015 * shape[0]
    masks = []
    for i in range(n_lesions):
        for _ in range(100):  # lesions apart, so each one's map peak is its own
            r, c = spots[rng.integers(len(spots))]
            if all(np.hypot(*(np.argwhere(m).mean(0) - (r, c))) > 8 * radius for m in masks):
                break
        lesion = Lesion("mass", bool(i % 2), (float(r), float(c)), radius, 0.25, seed=seed * 100 + i)
        masks.append(draw_lesion(img, lesion))
    img = np.clip(img, 0, 1)
    if side == "R":
        img, masks = img[:, ::-1], [m[:, ::-1] for m in masks]
    centres = np.array([np.argwhere(m).mean(0) for m in masks])
    meta = {
        "laterality": side,
        "pixel_spacing": list(pixel_spacing),
        "original_shape": list(shape),
        "source_path": f"synthetic-{seed}-{side}",
    }
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None], meta=meta)
    return LesionFilm(image, [np.ascontiguousarray(m) for m in masks], centres)
