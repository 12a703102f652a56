"""Back to the original image: maps, points and boxes in the network's frame -> the file's pixel grid.

Preprocessing (:func:`~mammo_monai.transforms.pipelines.preprocess_transforms`) crops to the breast,
resizes, flips the chest wall to the left and pads at the end; each step appends itself to the image's
``meta["grid_chain"]`` (:func:`~mammo_monai.transforms.resize.record_grid_step`): ``{"op", "in": [H, W],
"out": [H, W], ...}`` with the crop's ``box`` (row0, row1, col0, col1) and the flip's ``flipped``. This
module walks that chain backwards. One mechanism for every recipe and every output: a map is un-padded,
un-flipped, resized back bilinearly and placed in the crop box of a canvas of the original shape; a point
goes through the same steps as an affine map of pixel centres (the one bilinear resizing with
``align_corners=False`` uses), so a peak of a mapped map and a mapped peak land on the same pixel.

Why a recorded chain rather than MONAI's ``Invertd``: the chain is plain data in the image meta, so it
survives ``EnsureTyped(track_meta=False)``, JSON and a DataLoader, needs neither the transform objects nor
the tensor's ``applied_operations`` at inversion time, and maps points and boxes as well as images
(``Invertd`` inverts images only).

Coordinates: (row, col) of pixel centres, rows counted from the top, as in the manifest; boxes are
(row0, col0, row1, col1) pixel edges, end exclusive (skimage's ``regionprops`` ``bbox``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mammo_monai.inference.heatmaps import save_heatmaps
from mammo_monai.io.reader import read_mammogram

__all__ = [
    "boxes_to_original",
    "grid_chain",
    "original_image",
    "original_shape",
    "points_to_original",
    "save_on_original_grid",
    "to_original_grid",
]

OPS = ("crop", "resize", "flip", "pad")


def grid_chain(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The recorded steps of ``meta`` (an image's ``.meta``), checked.

    Raises:
        ValueError: no ``grid_chain`` (the image did not go through the recording transforms), or an
            unknown step.
    """
    chain = list(meta.get("grid_chain") or [])
    if not chain:
        source = meta.get("source_path", "the image")
        raise ValueError(f"{source}: no grid_chain in its meta: it was not preprocessed by the recording transforms")
    for step in chain:
        if step.get("op") not in OPS:
            raise ValueError(f"unknown grid_chain step {step!r}: expected one of {OPS}")
    return chain


def original_shape(meta: Mapping[str, Any]) -> tuple[int, int]:
    """(rows, cols) of the file as loaded: the input of the first recorded step."""
    rows, cols = grid_chain(meta)[0]["in"]
    return int(rows), int(cols)


def _fill_canvas(fill: float | Sequence[float], channels: int, shape: Sequence[int]) -> torch.Tensor:
    values = torch.as_tensor(np.broadcast_to(np.asarray(fill, dtype=np.float32), (channels,)).copy())
    return values[:, None, None].expand(channels, *shape).clone()


def to_original_grid(
    maps: np.ndarray, meta: Mapping[str, Any], fill: float | Sequence[float] = 0.0, mode: str = "bilinear"
) -> np.ndarray:
    """Maps in the network's frame -> the same maps on the original file's pixel grid.

    Args:
        maps: (C, H, W) or (H, W), the shape of the preprocessed image.
        meta: the preprocessed image's meta (its ``grid_chain``).
        fill: value outside the crop box (per channel, or one for all): 0 for a lesion probability, 1
            for a background class.
        mode: "bilinear" (probabilities) or "nearest" (labels) for the resize back.

    Returns:
        float32 array of the same leading dims at (rows, cols) of the original file.

    Raises:
        ValueError: ``maps`` is not the shape the chain ends with, or the chain is missing.
    """
    chain = grid_chain(meta)
    arr = np.asarray(maps, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(arr.reshape(-1, *arr.shape[-2:])))
    if list(x.shape[-2:]) != list(chain[-1]["out"]):
        raise ValueError(f"maps of shape {tuple(x.shape[-2:])}, but preprocessing ended at {tuple(chain[-1]['out'])}")
    for step in reversed(chain):
        (h, w), op = step["in"], step["op"]
        if op == "pad":
            x = x[..., :h, :w]
        elif op == "flip" and step.get("flipped", True):
            x = x.flip(-1)
        elif op == "resize" and tuple(x.shape[-2:]) != (h, w):
            kwargs = {"align_corners": False} if mode == "bilinear" else {}
            x = F.interpolate(x[None], size=(int(h), int(w)), mode=mode, **kwargs)[0]
        elif op == "crop":
            r0, r1, c0, c1 = step["box"]
            canvas = _fill_canvas(fill, x.shape[0], (h, w))
            canvas[:, r0:r1, c0:c1] = x
            x = canvas
    return x.numpy().reshape(*arr.shape[:-2], *x.shape[-2:])


def points_to_original(points: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """(N, 2) (row, col) pixel centres in the network's frame -> the original file's (float) pixels.

    A resize maps centre ``x`` to ``(x + 0.5) * in / out - 0.5`` (bilinear, ``align_corners=False``);
    a flip maps column ``c`` to ``W - 1 - c``; a crop adds its top-left corner; an end pad changes nothing.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2).copy()
    for step in reversed(grid_chain(meta)):
        (h, w), (oh, ow), op = step["in"], step["out"], step["op"]
        if op == "flip" and step.get("flipped", True):
            p[:, 1] = w - 1 - p[:, 1]
        elif op == "resize":
            p = (p + 0.5) * np.array([h / oh, w / ow]) - 0.5
        elif op == "crop":
            p += np.array([step["box"][0], step["box"][2]], dtype=np.float64)
    return p


def boxes_to_original(boxes: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """(N, 4) boxes (row0, col0, row1, col1), pixel edges end exclusive, in the network's frame -> the
    original file's pixels (float edges; a flip swaps the column edges so that col0 <= col1)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    for step in reversed(grid_chain(meta)):
        (h, w), (oh, ow), op = step["in"], step["out"], step["op"]
        if op == "flip" and step.get("flipped", True):
            b[:, [1, 3]] = w - b[:, [3, 1]]
        elif op == "resize":
            b *= np.array([h / oh, w / ow, h / oh, w / ow])
        elif op == "crop":
            b += np.array([step["box"][0], step["box"][2]] * 2, dtype=np.float64)
    return b


def original_image(meta: Mapping[str, Any], preprocessed: np.ndarray | None = None) -> np.ndarray:
    """The (rows, cols) image as stored, read again from ``meta["source_path"]`` (as the reader gives it:
    MONOCHROME1 inverted, VOI LUT applied); without a readable file, ``preprocessed`` (H, W) mapped back."""
    source = meta.get("source_path")
    if source and os.path.isfile(str(source)):
        return read_mammogram(str(source), modalities=None)[0][0]
    if preprocessed is None:
        raise ValueError(f"{source or 'the image'}: no file to read the original image from")
    return to_original_grid(preprocessed, meta)


def save_on_original_grid(
    out_dir: str | os.PathLike,
    name: str,
    meta: Mapping[str, Any],
    maps: np.ndarray,
    class_names: Sequence[str],
    preprocessed: np.ndarray | None = None,
) -> np.ndarray:
    """Map class probabilities (C, H, W), class 0 background, onto the original grid and save them with
    :func:`~mammo_monai.inference.heatmaps.save_heatmaps` over the original image, at its pixel spacing.

    Returns:
        float32 (rows, cols) lesion probability on the original grid: 1 - the background class.
    """
    back = to_original_grid(maps, meta, fill=[1.0] + [0.0] * (len(maps) - 1))  # outside the crop: background
    image = original_image(meta, preprocessed)
    save_heatmaps(out_dir, name, image, back, class_names, meta.get("pixel_spacing", (1.0, 1.0)))
    return np.clip(1.0 - back[0], 0.0, 1.0).astype(np.float32)
