"""Standardise orientation: the chest wall on the left of every image."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform


def tissue_side(img: torch.Tensor) -> str:
    """"L" when more intensity lies in the left half of the columns (the chest wall is on the left)."""
    half = img.shape[-1] // 2
    return "L" if float(img[..., :half].sum()) >= float(img[..., half:].sum()) else "R"


class FlipToChestWallLeft(Transform):
    """Mirror a (C, H, W) mammogram so that the chest wall is on the left.

    A right breast is stored with its chest wall on the right (as CBIS-DDSM, INbreast and most
    screening archives do), so it is flipped. Without laterality (MIAS, plain PNGs) the side is
    inferred from where the tissue lies. ``meta["flipped"]`` records the decision.

    Args:
        use_metadata: trust laterality from the argument or ``img.meta["laterality"]``; when False
            always infer from the tissue (for archives that store both sides the same way).
    """

    backend = [torch.Tensor]

    def __init__(self, use_metadata: bool = True) -> None:
        self.use_metadata = use_metadata

    def needs_flip(self, img: torch.Tensor, laterality: str | None = None) -> bool:
        """Decide from laterality when known, else from the tissue."""
        side = ""
        if self.use_metadata:
            side = laterality or (img.meta.get("laterality", "") if isinstance(img, MetaTensor) else "")
        if str(side).upper() not in ("L", "R"):
            return tissue_side(img) == "R"
        return str(side).upper() == "R"

    def __call__(self, img: torch.Tensor, laterality: str | None = None, flip: bool | None = None) -> torch.Tensor:
        flip = self.needs_flip(img, laterality) if flip is None else flip
        out = img.flip(-1) if flip else img  # (C, H, W): the last axis is columns
        if isinstance(out, MetaTensor):
            out.meta["flipped"] = bool(flip)
        return out


class FlipToChestWallLeftd(MapTransform):
    """Dictionary version of :class:`FlipToChestWallLeft`.

    The decision is made once, on the first key, and applied to every key (image, breast mask,
    lesion masks) so they stay aligned; it is also stored in ``data[flipped_key]``.

    Args:
        keys: keys to flip together; the first decides.
        laterality_key: key of a laterality value in the dictionary (a manifest column); it wins
            over the image metadata when present.
    """

    def __init__(
        self,
        keys: KeysCollection,
        laterality_key: str = "laterality",
        flipped_key: str = "flipped",
        use_metadata: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.flipper = FlipToChestWallLeft(use_metadata)
        self.laterality_key = laterality_key
        self.flipped_key = flipped_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        flip = None
        for key in self.key_iterator(d):
            if flip is None:
                flip = self.flipper.needs_flip(d[key], d.get(self.laterality_key))
            d[key] = self.flipper(d[key], flip=flip)
        if flip is not None:
            d[self.flipped_key] = flip
        return d
