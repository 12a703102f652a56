"""Breast masking for full-field and digitised-film mammograms.

Starts from Shen et al.'s ``segment_breast`` (threshold at 5 % of the maximum on an 8-bit copy,
largest region, holes filled) and adds what scanned film needs: bright film borders and garbage
edge rows are removed first (they join labels, rulers and the breast into one region), then labels
and inset film edges that lie against the breast (bright straight-edged shapes), thin bridges
are cut by a morphological opening, and the breast outline the opening rounded off is put back.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends
from scipy import ndimage
from skimage.measure import label
from skimage.morphology import dilation, footprint_rectangle, opening

from mammo_monai.io.errors import MammogramError
from mammo_monai.transforms.bright_artefacts import bright_artefacts
from mammo_monai.transforms.resize import record_grid_step

SIDES = ("left", "right", "top", "bottom")  # left/right first: top/bottom bands are refilled from their result


def _source(img: torch.Tensor) -> str | None:
    return img.meta.get("source_path") if isinstance(img, MetaTensor) else None


def _lines(binary: np.ndarray, side: str) -> np.ndarray:
    """Fraction of bright pixels in each row/column, from the ``side`` edge inwards."""
    prof = binary.mean(axis=1) if side in ("top", "bottom") else binary.mean(axis=0)
    return prof[::-1] if side in ("bottom", "right") else prof


def film_border_bands(
    binary: np.ndarray,
    fill: Sequence[float] = (0.8, 0.97),
    max_depth: float = 0.1,
    margin: float = 0.03,
    drop: float = 0.1,
) -> dict[str, int]:
    """Depth of the film border / garbage lines at each edge of a thresholded image.

    A border band is a run of rows (columns) that are at least ``fill`` bright, starting within
    ``margin`` of the edge (a dark scanner margin may lie outside the film) and ending with a step:
    within 1 % of the image the bright fraction falls by ``drop`` (at most ``1 - fill``) or more.
    A run that goes deeper than ``max_depth``, or fades out gradually, is breast (a chest wall that
    spans most of the film), not border. Each ``fill`` level is tried and the deepest band kept:
    the lower one finds mostly-bright garbage rows, the higher one a full border line beside a
    chest wall that spans most of the film. Nested bands (a strip inside a frame) are followed.

    Args:
        binary: (H, W) tissue-or-brighter mask.
        fill, max_depth, margin, drop: see above; depths are fractions of the image across that edge.

    Returns:
        {side: depth in pixels} for the sides that have a band ("left", "right", "top", "bottom").
    """
    bands = {}
    for side in SIDES:
        prof = _lines(binary, side)
        deepest, near = max(2, int(max_depth * len(prof))), max(1, int(margin * len(prof)))
        step = max(2, len(prof) // 100)
        found = 0
        for level in fill:
            depth = 0
            while True:
                hits = np.flatnonzero(prof[depth : depth + near] >= level)
                if not len(hits):
                    break
                start = depth + int(hits[0])
                ends = np.flatnonzero(prof[start:deepest] < level)
                if not len(ends):
                    break
                end = start + int(ends[0])
                if prof[end - 1] - prof[min(end - 1 + step, len(prof) - 1)] < min(drop, 1.0 - level):
                    break
                depth = end
            found = max(found, depth)
        if found:
            bands[side] = found
    return bands


def _edge_view(a: np.ndarray, side: str) -> np.ndarray:
    """``a`` seen with ``side`` as its top edge (a view, so writes go through)."""
    return {"top": a, "bottom": a[::-1], "left": a.T, "right": a.T[::-1]}[side]


def _largest(binary: np.ndarray) -> np.ndarray | None:
    labels = label(binary, connectivity=2)
    if labels.max() == 0:
        return None
    return labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1


def _background_level(arr: np.ndarray, hi: float) -> float:
    """Zero, as Shen et al. assume, unless the image has a background raised above zero.

    A windowed DICOM or a film's base density puts the background at a few % of the maximum, and
    "5 % of the maximum" then calls the whole film tissue. A background is a flat floor: at least a
    tenth of the pixels within 2 % of the range above the minimum; its minimum is then the zero. An
    image without one (a crop inside the breast) keeps Shen's zero.
    """
    lo = float(arr.min())
    if lo <= 0 or np.count_nonzero(arr <= lo + 0.02 * (hi - lo)) < 0.1 * arr.size:
        return 0.0
    return lo


def _square(r: int) -> tuple:
    # skimage's separable square: 10x faster than a disk of the same radius at a 1000-px working size,
    # and no weaker (the square holds the disk), so it cuts every bridge the disk would.
    return footprint_rectangle((2 * r + 1, 2 * r + 1), decomposition="separable")


class BreastMask(Transform):
    """Binary mask (1, H, W) of the breast, robust to digitised-film artefacts.

    Steps, on a copy shrunk to ``working_size`` (block mean):

    1. tissue = 8-bit copy above ``threshold`` of its maximum (Shen et al.), counted from a
       background level raised above zero when there is one (:func:`_background_level`);
    2. film border and garbage edge rows/columns (:func:`film_border_bands`) are set to background,
       then labels and film edges inset from the image edge (:func:`bright_artefacts`), which can
       touch the breast along a long stretch that the opening does not cut;
    3. an opening (square of half-width ``radius``) cuts thin bridges (border remains, ruler ticks,
       the necks of labels) and the largest region left is the breast body;
    4. the outline the opening rounded off (skin line, nipple) is put back: tissue within
       ``radius + 2`` px of the body, largest region, holes filled;
    5. a removed border band is refilled by extending the mask's first line inside it to the edge,
       so a chest wall or pectoral muscle that reaches the film edge under it stays whole, when the
       band is thin (a border line, garbage rows: at most ``2 * (radius + 2)``) or the breast
       spans half the film along it (a chest wall); a wide strip elsewhere is unexposed film.

    Args:
        threshold: fraction of the intensity range above the background that counts as tissue
            (Shen: 0.05).
        working_size: longer side of the working copy; None for full resolution. A 4600-row film
            needs no more than ~1000 rows to find its outline, at 1/20 the cost. ``__call__``
            enlarges the mask back to the input size by nearest neighbour; :meth:`working_mask`
            returns it at the working size.
        radius: opening half-width in working pixels; None uses 1/160 of the working copy's longer
            side (6 px at 1024: bridges narrower than ~1 % of the film are cut).
        border_fill: fractions of a line that must be bright for it to count as film border
            (see :func:`film_border_bands`).
        border_depth: deepest film border, as a fraction of the image across that edge.

    Raises:
        MammogramError: for a constant image, or when nothing breast-like is left ("breast mask is empty").
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]  # shrunk in torch, segmented in NumPy (skimage)

    def __init__(
        self,
        threshold: float = 0.05,
        working_size: int | None = 1024,
        radius: int | None = None,
        border_fill: Sequence[float] = (0.8, 0.97),
        border_depth: float = 0.1,
    ) -> None:
        self.threshold = threshold
        self.working_size = working_size
        self.radius = radius
        self.border_fill = tuple(border_fill)
        self.border_depth = border_depth

    def working_mask(self, img: torch.Tensor) -> tuple[np.ndarray, int]:
        """The (h, w) boolean mask at the working size and the block factor it was shrunk by."""
        x = (img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img))[0].float()  # no meta overhead
        factor = 1
        if self.working_size and max(x.shape) > self.working_size:
            factor = int(np.ceil(max(x.shape) / self.working_size))
            x = F.avg_pool2d(x[None, None], factor, ceil_mode=True)[0, 0]
        arr = x.numpy()
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if arr.size == 0 or hi <= 0 or hi - lo <= 1e-4 * hi:  # tolerance: resizing leaves float jitter
            raise MammogramError(
                _source(img), f"constant or empty image (min {lo:g}, max {hi:g}): no breast to segment"
            )
        base = _background_level(arr, hi)
        img8 = np.clip((arr - base) / (hi - base) * 255.0, 0, 255).astype(np.uint8)
        mask = self.segment(img8 > int(self.threshold * 255), img8)
        if mask is None or not mask.any():
            raise MammogramError(_source(img), "breast mask is empty: no breast-like region above the tissue threshold")
        return mask, factor

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        mask, factor = self.working_mask(img)
        out = torch.from_numpy(mask)
        if factor > 1:
            h, w = img.shape[-2:]
            out = out.repeat_interleave(factor, 0).repeat_interleave(factor, 1)[:h, :w]
        return out[None]

    def segment(self, tissue: np.ndarray, img8: np.ndarray | None = None) -> np.ndarray | None:
        """Steps 2-5 on a thresholded (H, W) image (and its 8-bit source, for labels and inset strips);
        None when no breast is left."""
        bands = film_border_bands(tissue, self.border_fill, self.border_depth)
        cleaned = tissue.copy()
        for side, depth in bands.items():
            _edge_view(cleaned, side)[:depth] = False
        if img8 is not None:
            cleaned &= ~bright_artefacts(np.where(cleaned, img8, 0), cleaned, bands=bands)
        r = self.radius or max(2, round(max(tissue.shape) / 160))
        body = _largest(opening(cleaned, _square(r)))
        if body is None:  # nothing thicker than the bridges: keep what the threshold found
            body = _largest(cleaned)
            if body is None:
                return None
        mask = ndimage.binary_fill_holes(_largest(cleaned & dilation(body, _square(r + 2))))
        for side, depth in bands.items():
            edge = _edge_view(mask, side)
            # a border line or garbage rows, or a strip beside a chest wall (the breast spans half
            # the film there and shows through): the breast goes on to the edge. A wide strip
            # elsewhere is unexposed film.
            if depth <= 2 * (r + 2) or edge[depth].mean() >= 0.5:
                edge[:depth] = edge[depth]
        return mask


def bounding_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1), end exclusive, of the non-zero pixels of a (1, H, W) mask."""
    rows = torch.nonzero(mask[0].any(1)).flatten()
    cols = torch.nonzero(mask[0].any(0)).flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class BreastMaskd(MapTransform):
    """Dictionary version of :class:`BreastMask`: the breast mask of the first of ``keys``, found at the
    working resolution and stored under ``mask_key`` without being applied.

    The fast path of the preprocessing pipeline: the mask is found on the full image's working copy
    (see :class:`BreastMask`) and stored at that size under ``mask_key``; :class:`ResizeMammogramd`
    then gives it the image's output shape and MONAI's ``MaskIntensityd`` applies it, so nothing is
    done at the full ~4600 x 2800 resolution but the resize itself. With ``crop`` the image and
    ``crop_keys`` are first cropped to the breast's bounding box (a view, no copy). The image meta
    gets ``mask_fraction`` (the share of the, cropped, image that is breast) and ``breast_bbox`` (row0,
    row1, col0, col1 in the input's pixels; the whole image without ``crop``), and a "crop" step (always,
    the whole image without ``crop``) starts its ``grid_chain`` (see :func:`record_grid_step`).

    Args:
        keys: the image key(s); the mask is computed from the first and all are cropped alike.
        mask_key: where the (1, h, w) float 0/1 mask goes.
        threshold, working_size: see :class:`BreastMask`.
        crop: crop to the breast's bounding box.
        crop_keys: further keys (lesion masks, at the image's size) cropped the same way.
    """

    backend = BreastMask.backend

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str = "mask",
        threshold: float = 0.05,
        working_size: int | None = 1024,
        crop: bool = False,
        crop_keys: Sequence[str] = (),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.masker = BreastMask(threshold, working_size)
        self.mask_key = mask_key
        self.crop = crop
        self.crop_keys = tuple(crop_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return d
        img = d[keys[0]]
        h, w = img.shape[-2:]
        small, f = self.masker.working_mask(img)
        mask = torch.from_numpy(small)[None]
        r0, r1, c0, c1 = 0, h, 0, w
        if self.crop:
            s0, s1, t0, t1 = bounding_box(mask)
            mask = mask[..., s0:s1, t0:t1]
            r0, r1, c0, c1 = s0 * f, min(h, s1 * f), t0 * f, min(w, t1 * f)
            for key in [*keys, *(k for k in self.crop_keys if k in d)]:
                d[key] = d[key][..., r0:r1, c0:c1]
        for key in keys:
            if isinstance(d[key], MetaTensor):
                d[key].meta.update(mask_fraction=float(mask.float().mean()), breast_bbox=[r0, r1, c0, c1])
                record_grid_step(d[key], "crop", (h, w), (r1 - r0, c1 - c0), box=[r0, r1, c0, c1])
        d[self.mask_key] = MetaTensor(mask.float())
        return d
