"""The one place where ``serve`` turns an image and its heatmap into the two PNGs the page stacks.

The page shows the grey image and, above it, the heatmap as a separate PNG with transparency, so its
opacity slider only changes the heatmap layer. Both are drawn on the original image's pixel grid (the file
as stored, before masking, cropping, resizing, flipping and padding: :mod:`mammo_monai.inference.original_grid`),
shrunk to at most :data:`DISPLAY_SIDE` pixels on the long side.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image

from mammo_monai.inference.original_grid import original_image, to_original_grid

#: the colour map of the heatmap layer (perceptually ordered, readable for most colour-vision deficiencies)
COLOUR_MAP = "inferno"
#: the probability at which the heatmap layer becomes fully opaque (below it, alpha rises linearly from 0)
FULL_ALPHA_AT = 0.5
#: the long side, in pixels, of the layers sent to the page
DISPLAY_SIDE = 1024


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # uint8 (H, W) is saved as L, (H, W, 4) as RGBA
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _grey(image: np.ndarray) -> np.ndarray:
    """The image as 8-bit grey, stretched between its 0.5th and 99.5th percentiles."""
    lo, hi = np.percentile(image, (0.5, 99.5)) if image.size else (0.0, 1.0)
    scaled = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def _shrunk(array: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """``array`` (H, W) or (H, W, 4) uint8 shrunk so that its long side is at most ``side`` (area averaging)."""
    h, w = array.shape[:2]
    factor = side / max(h, w)
    if factor >= 1:
        return array
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(array)).resize(size, Image.Resampling.BOX))


def overlay_images(d: dict[str, Any], probability: torch.Tensor | np.ndarray) -> dict[str, bytes]:
    """The page's two layers of one view on its original pixel grid: ``{"image": grey PNG, "heatmap": RGBA
    PNG}``, same size.

    Args:
        d: the loaded image (``predict``'s ``_load``: ``d["image"]`` (1, H, W) in the network's frame, its meta
            recording how it got there).
        probability: P(malignant) (H, W) on the network's grid; mapped back onto the original image, where the
            heatmap's colour is the probability and its alpha rises with it (transparent at 0, opaque from
            :data:`FULL_ALPHA_AT`).
    """
    meta = d["image"].meta
    prob = np.clip(to_original_grid(np.asarray(probability, dtype=np.float32), meta), 0.0, 1.0)
    image = np.asarray(original_image(meta, np.asarray(d["image"][0], dtype=np.float32)), dtype=np.float32)
    rgba = colormaps[COLOUR_MAP](prob)  # (rows, cols, 4) floats in [0, 1]
    rgba[..., 3] = np.clip(prob / FULL_ALPHA_AT, 0.0, 1.0)
    heat = np.round(rgba * 255).astype(np.uint8)
    return {"image": _png(_shrunk(_grey(image))), "heatmap": _png(_shrunk(heat))}
