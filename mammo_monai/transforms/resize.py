"""Resize mammograms to the network size (default 1152 x 896, H x W), optionally keeping the aspect."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Resize, SpatialPad, Transform

DEFAULT_SIZE = (1152, 896)


class ResizeMammogram(Transform):
    """Resize a (C, H, W) image to ``size``.

    Args:
        size: (H, W) of the output.
        keep_aspect: scale by the smaller of the two ratios and pad the end of each axis (bottom,
            right: away from a chest wall on the left) with zeros, so original coordinates map to
            output coordinates by one factor.
        mode: interpolation; None picks "area" when shrinking (anti-aliased, as fast as bilinear)
            and "bilinear" when enlarging. Use "nearest" for masks.

    ``meta["scale"]`` records (row factor, column factor) from input to output pixels.
    """

    backend = [torch.Tensor]

    def __init__(self, size: Sequence[int] = DEFAULT_SIZE, keep_aspect: bool = False, mode: str | None = None) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.keep_aspect = keep_aspect
        self.mode = mode

    def target(self, shape: Sequence[int]) -> tuple[int, int]:
        """(H, W) before padding for an input of spatial ``shape``."""
        h, w = int(shape[-2]), int(shape[-1])
        if not self.keep_aspect:
            return self.size
        s = min(self.size[0] / h, self.size[1] / w)
        return min(self.size[0], max(1, round(h * s))), min(self.size[1], max(1, round(w * s)))

    def __call__(self, img: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        h, w = img.shape[-2:]
        th, tw = self.target(img.shape)
        mode = mode or self.mode or ("area" if th * tw < h * w else "bilinear")
        kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        out = img if (th, tw) == (h, w) else Resize((th, tw), mode=mode, **kwargs)(img)
        if self.keep_aspect and (th, tw) != self.size:
            out = SpatialPad(self.size, method="end")(out)
        if isinstance(out, MetaTensor):
            out.meta["scale"] = [th / h, tw / w]
        return out


class ResizeMammogramd(MapTransform):
    """Dictionary version of :class:`ResizeMammogram`; ``mask_keys`` are resized by nearest neighbour."""

    def __init__(
        self,
        keys: KeysCollection,
        size: Sequence[int] = DEFAULT_SIZE,
        keep_aspect: bool = False,
        mode: str | None = None,
        mask_keys: Sequence[str] = ("mask",),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.resizer = ResizeMammogram(size, keep_aspect, mode)
        self.mask_keys = tuple(mask_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resizer(d[key])
        for key in self.mask_keys:
            if key in d:
                d[key] = self.resizer(d[key], mode="nearest")
        return d
