"""Breast masking after Shen et al.'s ``segment_breast``: removes burned-in labels and markers."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from scipy import ndimage
from skimage.measure import label

from mammo_monai.io.errors import MammogramError


def _source(img: torch.Tensor) -> str | None:
    return img.meta.get("source_path") if isinstance(img, MetaTensor) else None


class BreastMask(Transform):
    """Binary mask (1, H, W) of the breast: the largest bright region with its holes filled.

    As in Shen et al.'s ``segment_breast``: an 8-bit copy is thresholded at ``threshold`` of its
    maximum, the largest connected region kept and its holes filled. Labels, markers and noise not
    connected to the breast fall outside the mask.

    Args:
        threshold: fraction of the maximum intensity that counts as tissue (Shen: 0.05).
        working_size: the mask is computed on a copy shrunk (block mean) so that its longer side is
            at most this many pixels, then enlarged by nearest neighbour; None for full resolution.
            A 4000-row mammogram needs no more than ~1000 rows to find its outline, at 1/16 the cost.

    Raises:
        MammogramError: for an empty or constant image (nothing to segment).
    """

    backend = [torch.Tensor]

    def __init__(self, threshold: float = 0.05, working_size: int | None = 1024) -> None:
        self.threshold = threshold
        self.working_size = working_size

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(img)[0].float()
        lo, hi = float(x.min()), float(x.max())
        if x.numel() == 0 or hi <= 0 or hi - lo <= 1e-4 * hi:  # tolerance: resizing leaves float jitter
            raise MammogramError(_source(img), f"constant or empty image (min {lo:g}, max {hi:g}): no breast to segment")
        factor = 1
        if self.working_size and max(x.shape) > self.working_size:
            factor = int(np.ceil(max(x.shape) / self.working_size))
            small = F.avg_pool2d(x[None, None], factor, ceil_mode=True)[0, 0]
        else:
            small = x
        img8 = np.clip(small.numpy() / hi * 255.0, 0, 255).astype(np.uint8)
        binary = img8 > int(self.threshold * 255)
        labels = label(binary, connectivity=2)
        if labels.max() == 0:
            raise MammogramError(_source(img), "no pixel above the tissue threshold: no breast to segment")
        largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
        mask = torch.from_numpy(ndimage.binary_fill_holes(labels == largest))
        if factor > 1:
            mask = mask.repeat_interleave(factor, 0).repeat_interleave(factor, 1)[: x.shape[0], : x.shape[1]]
        return mask[None]


def bounding_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1), end exclusive, of the non-zero pixels of a (1, H, W) mask."""
    rows = torch.nonzero(mask[0].any(1)).flatten()
    cols = torch.nonzero(mask[0].any(0)).flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class SegmentBreast(Transform):
    """Zero everything outside the breast; optionally crop to the breast's bounding box.

    The array version returns only the image; ``meta["mask_fraction"]`` and, when cropping,
    ``meta["breast_bbox"]`` (row0, row1, col0, col1 in the input's pixels) record what was done.
    Use :class:`SegmentBreastd` to keep the mask itself.
    """

    backend = [torch.Tensor]

    def __init__(self, threshold: float = 0.05, crop: bool = False, working_size: int | None = 1024) -> None:
        self.masker = BreastMask(threshold, working_size)
        self.crop = crop

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return self.apply(img, self.masker(img))[0]

    def apply(self, img: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask (and crop) ``img`` with a precomputed ``mask``; returns the image and the (cropped) mask."""
        out = img * mask.to(img.dtype)
        bbox = bounding_box(mask)
        if self.crop:
            r0, r1, c0, c1 = bbox
            out, mask = out[..., r0:r1, c0:c1], mask[..., r0:r1, c0:c1]
        if isinstance(out, MetaTensor):
            out.meta["mask_fraction"] = float(mask.float().mean())
            out.meta["breast_bbox"] = list(bbox) if self.crop else [0, img.shape[-2], 0, img.shape[-1]]
        return out, mask


class SegmentBreastd(MapTransform):
    """Dictionary version of :class:`SegmentBreast`; stores the mask under ``mask_key``.

    Args:
        keys: the image key(s) to mask; the mask is computed from the first.
        mask_key: where the breast mask (uint8, 0/1, same shape as the output) goes.
        crop_keys: further keys (lesion masks, say) cropped the same way but not masked.
    """

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str = "mask",
        threshold: float = 0.05,
        crop: bool = False,
        working_size: int | None = 1024,
        crop_keys: Sequence[str] = (),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.segmenter = SegmentBreast(threshold, crop, working_size)
        self.mask_key = mask_key
        self.crop_keys = tuple(crop_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        mask = None
        for key in self.key_iterator(d):
            if mask is None:
                mask = self.segmenter.masker(d[key])
            d[key], out_mask = self.segmenter.apply(d[key], mask)
        if mask is None:
            return d
        for key in self.crop_keys:
            if key in d and self.segmenter.crop:
                r0, r1, c0, c1 = bounding_box(mask)
                d[key] = d[key][..., r0:r1, c0:c1]
        d[self.mask_key] = MetaTensor(out_mask.to(torch.uint8))
        return d
