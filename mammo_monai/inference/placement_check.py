"""How far from the true lesion centre a map's peak lands once mapped back onto the original image.

An "oracle" map stands in for a network: each lesion's mask is pushed through the same preprocessing as
the image (an extra mask key: cropped, resized, flipped, padded with it), and a Gaussian at the centroid of
the preprocessed mask, as wide as the lesion, is the map a perfect detector would draw in the network's
frame. :func:`~mammo_monai.inference.original_grid.to_original_grid` takes it back; the distance from its
peak to the lesion's centroid on the film, in original pixels, is the placement error. The centroid itself,
mapped by :func:`~mammo_monai.inference.original_grid.points_to_original`, gives the point error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.data import MetaTensor

from mammo_monai.inference.original_grid import points_to_original, to_original_grid
from mammo_monai.synthetic.lesion_films import LesionFilm
from mammo_monai.transforms.pipelines import preprocess_transforms


def gaussian_map(shape: Sequence[int], centre: Sequence[float], sigma: float) -> np.ndarray:
    """(H, W) float32 Gaussian of peak 1 at the (row, col) ``centre``."""
    rows, cols = np.ogrid[: int(shape[0]), : int(shape[1])]
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def placement_errors(
    film: LesionFilm, size: Sequence[int], crop: bool = False, keep_aspect: bool = False
) -> dict[str, Any]:
    """Placement errors (original pixels) of every lesion of ``film`` preprocessed to ``size``.

    Returns:
        ``{"peak": [...], "point": [...], "flipped": bool, "shape": (H, W) of the mapped maps}``.
    """
    keys = [f"lesion{i}" for i in range(len(film.masks))]
    data: dict[str, Any] = {"image": film.image.clone()}
    data.update({k: MetaTensor(np.asarray(m, np.float32)[None]) for k, m in zip(keys, film.masks)})
    pipeline = preprocess_transforms(
        size=size, extra_mask_keys=keys, crop=crop, keep_aspect=keep_aspect, intensity="percentile", load=False
    )
    out = pipeline(data)
    meta = out["image"].meta
    peaks, points, shape = [], [], None
    for key, truth in zip(keys, film.centres):
        mask = np.asarray(out[key][0]) > 0
        centre = np.argwhere(mask).mean(0)
        sigma = max(1.5, float(np.sqrt(mask.sum() / np.pi)))
        back = to_original_grid(gaussian_map(mask.shape, centre, sigma), meta)
        shape = back.shape
        peak = np.unravel_index(int(np.argmax(back)), back.shape)
        peaks.append(float(np.hypot(*(np.asarray(peak) - truth))))
        points.append(float(np.hypot(*(points_to_original(centre[None], meta)[0] - truth))))
    return {"peak": peaks, "point": points, "flipped": bool(out["flipped"]), "shape": shape}
