"""The one place where ``serve`` turns an image and its heatmap into the two PNGs the page stacks.

The page shows the grey image and, above it, the heatmap as a separate PNG with transparency, so its
opacity slider only changes the heatmap layer. Today both are drawn on the grid the network saw, mirrored
back to the side the film was stored on; mapping onto the original image's pixel grid belongs here too.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image

#: the colour map of the heatmap layer (perceptually ordered, readable for most colour-vision deficiencies)
COLOUR_MAP = "inferno"
#: the probability at which the heatmap layer becomes fully opaque (below it, alpha rises linearly from 0)
FULL_ALPHA_AT = 0.5


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


def overlay_images(d: dict[str, Any], probability: torch.Tensor | np.ndarray) -> dict[str, bytes]:
    """The page's two layers of one view: ``{"image": grey PNG, "heatmap": RGBA PNG}``, same size.

    Args:
        d: the loaded image (``predict``'s ``_load``: ``d["image"]`` (1, H, W) in the network's frame,
            ``d["flipped"]`` when it was mirrored to put the chest wall on the left).
        probability: P(malignant) (H, W) on that grid; the heatmap's colour is the probability and its
            alpha rises with it (transparent at 0, opaque from :data:`FULL_ALPHA_AT`).
    """
    image = np.asarray(d["image"][0], dtype=np.float32)
    prob = np.clip(np.asarray(probability, dtype=np.float32), 0.0, 1.0)
    if d.get("flipped"):  # back to the side the film was stored on
        image, prob = image[:, ::-1], prob[:, ::-1]
    rgba = colormaps[COLOUR_MAP](prob)  # (H, W, 4) floats in [0, 1]
    rgba[..., 3] = np.clip(prob / FULL_ALPHA_AT, 0.0, 1.0)
    heat = np.round(rgba * 255).astype(np.uint8)
    return {"image": _png(_grey(image)), "heatmap": _png(heat)}
