"""Standardise orientation: the chest wall on the left of every image."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

from mammo_monai.io.errors import MammogramError
from mammo_monai.transforms.mask import BreastMask
from mammo_monai.transforms.resize import record_grid_step


def chest_wall_side(mask: torch.Tensor, min_gap: float = 0.15) -> str | None:
    """Side of the chest wall ("L" or "R") read from the shape of a (1, H, W) or (H, W) breast mask.

    The chest wall is where the film cuts the breast: the mask meets that edge along most of the
    image height, while the nipple side is a convex outline that meets its edge, if at all, along a
    shorter stretch, even when the breast fills the film. When both edges are met along similar
    lengths (or neither is), the side where the mask is taller over the outer tenth of the columns
    wins, since the breast narrows towards the nipple.

    Args:
        mask: breast mask, non-zero inside.
        min_gap: smallest difference, as a fraction of the height, that decides.

    Returns:
        "L", "R", or None when the shape does not tell.
    """
    m = torch.as_tensor(mask)
    m = (m[0] if m.ndim == 3 else m) != 0
    h, w = m.shape
    if w < 4 or not bool(m.any()):
        return None
    k = max(1, w // 50)
    cues = [(float(m[:, :k].any(1).sum()) / h, float(m[:, -k:].any(1).sum()) / h)]  # rows touching each edge
    band = max(1, w // 10)
    cols = m.sum(0, dtype=torch.float32) / h  # height fraction of each column
    cues.append((float(cols[:band].mean()), float(cols[-band:].mean())))
    for left, right in cues:
        if abs(left - right) >= min_gap:
            return "L" if left > right else "R"
    return None


def pectoral_side(
    img: torch.Tensor, mask: torch.Tensor, rows: float = 0.3, cols: float = 0.125, gap: float = 0.25
) -> str | None:
    """Side of the chest wall ("L"/"R") from the pectoral muscle of an MLO view that fills the film.

    When the breast fills the whole film its mask has no shape to read, and dense tissue towards
    the nipple makes that half the brighter. The pectoral muscle still tells: a bright, even
    triangle in the chest wall's upper corner, where on the nipple side the breast thins towards
    its skin. The mean (masked) intensity of the upper ``rows`` x outer ``cols`` block is compared
    between the two sides.

    Args:
        img: (C, H, W) image.
        mask: its breast mask, same (H, W).
        rows, cols: the corner blocks, as fractions of the height and width.
        gap: smallest difference of the two means, as a fraction of the masked image's mean, that decides.

    Returns:
        "L", "R", or None when the corners do not differ enough (a CC view, or no muscle shown).
    """
    x = torch.as_tensor(img).float()[0]
    m = (torch.as_tensor(mask) != 0).reshape(x.shape)
    h, w = x.shape
    r, k = max(1, int(rows * h)), max(1, int(cols * w))
    if not bool(m.any()):
        return None
    corner = [x[:r, :k][m[:r, :k]], x[:r, -k:][m[:r, -k:]]]
    if min(len(c) for c in corner) < 0.25 * r * k:  # one corner is mostly background: nothing to compare
        return None
    left, right = (float(c.mean()) for c in corner)
    if abs(left - right) < gap * float(x[m].mean()):
        return None
    return "L" if left > right else "R"


def tissue_side(img: torch.Tensor, mask: torch.Tensor | None = None) -> str:
    """Side of the chest wall ("L"/"R") from the pixels: the mask's shape, the pectoral muscle, else the intensity.

    Args:
        img: (C, H, W) image.
        mask: its breast mask; None computes one with :class:`BreastMask`.

    Returns:
        :func:`chest_wall_side` of the mask when it decides; else :func:`pectoral_side` when the
        breast fills the film; otherwise "L" when more (masked) intensity lies in the left half of
        the columns (a weak cue: a large breast with dense tissue towards the nipple fools it).
        "" for a blank image.
    """
    if mask is None:
        try:
            mask = BreastMask()(img)
        except MammogramError:
            return ""
    side = chest_wall_side(mask)
    if side:
        return side
    x, m = torch.as_tensor(img).float(), torch.as_tensor(mask) != 0
    small = x if m.shape[-2:] == x.shape[-2:] else F.interpolate(x[None], size=m.shape[-2:], mode="area")[0]
    side = pectoral_side(small, m)  # the mask may be at the working size
    if side:
        return side
    if m.shape[-2:] == x.shape[-2:]:
        x = x * m
    half = x.shape[-1] // 2
    left, right = float(x[..., :half].sum()), float(x[..., half:].sum())
    if left == right == 0:
        return ""
    return "L" if left >= right else "R"


class FlipToChestWallLeft(Transform):
    """Mirror a (C, H, W) mammogram so that the chest wall is on the left.

    A right breast is stored with its chest wall on the right (as CBIS-DDSM, INbreast and most
    screening archives do), so it is flipped. Laterality metadata decides when known; the side read
    from the pixels (:func:`tissue_side`) decides otherwise and is always recorded, so that a
    disagreement (a mislabelled file, or an archive that stores sides differently) shows up:
    ``meta["flipped"]``, ``meta["pixel_side"]`` ("L"/"R", "" when blank) and
    ``meta["laterality_mismatch"]`` (metadata and pixels disagree), and a "flip" step in ``meta["grid_chain"]``
    (:func:`~mammo_monai.transforms.resize.record_grid_step`).

    Args:
        use_metadata: trust laterality from the argument or ``img.meta["laterality"]``; when False
            always decide from the pixels (for archives that store both sides the same way; no
            mismatch is then reported).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, use_metadata: bool = True) -> None:
        self.use_metadata = use_metadata

    def decide(
        self, img: torch.Tensor, laterality: str | None = None, mask: torch.Tensor | None = None
    ) -> tuple[bool, str, bool]:
        """(flip, side read from the pixels, laterality mismatch) for ``img`` and its breast ``mask``.

        The mismatch is True only when laterality is known (and trusted) and the pixels tell the
        other side; without laterality the pixels decide and there is nothing to disagree with.
        """
        side = ""
        if self.use_metadata:
            side = str(laterality or (img.meta.get("laterality", "") if isinstance(img, MetaTensor) else "")).upper()
        pixels = tissue_side(img, mask)
        if side in ("L", "R"):
            return side == "R", pixels, pixels in ("L", "R") and pixels != side
        return pixels == "R", pixels, False

    def __call__(
        self,
        img: torch.Tensor,
        laterality: str | None = None,
        flip: bool | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        checks: dict[str, Any] = {}
        if flip is None:
            flip, pixels, mismatch = self.decide(img, laterality, mask)
            checks = {"pixel_side": pixels, "laterality_mismatch": mismatch}
        out = img.flip(-1) if flip else img  # (C, H, W): the last axis is columns
        if isinstance(out, MetaTensor):
            out.meta.update(flipped=bool(flip), **checks)
            record_grid_step(out, "flip", out.shape[-2:], out.shape[-2:], flipped=bool(flip))
        return out


class FlipToChestWallLeftd(MapTransform):
    """Dictionary version of :class:`FlipToChestWallLeft`.

    The decision is made once, on the first key and the breast mask under ``mask_key`` (before it
    is flipped), and applied to every key (image, breast mask, lesion masks) so they stay aligned.
    It is stored in ``data[flipped_key]``, with the side read from the pixels in
    ``data[pixel_side_key]`` and whether it disagrees with the laterality metadata in
    ``data[mismatch_key]`` (also in the first key's meta).

    Args:
        keys: keys to flip together; the first decides.
        laterality_key: key of a laterality value in the dictionary (a manifest column); it wins
            over the image metadata when present.
        mask_key: key of the breast mask; None or absent computes one from the image.
    """

    backend = FlipToChestWallLeft.backend

    def __init__(
        self,
        keys: KeysCollection,
        laterality_key: str = "laterality",
        flipped_key: str = "flipped",
        use_metadata: bool = True,
        mask_key: str | None = "mask",
        pixel_side_key: str = "pixel_side",
        mismatch_key: str = "laterality_mismatch",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.flipper = FlipToChestWallLeft(use_metadata)
        self.laterality_key = laterality_key
        self.flipped_key = flipped_key
        self.mask_key = mask_key
        self.pixel_side_key = pixel_side_key
        self.mismatch_key = mismatch_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        decision = None
        for key in self.key_iterator(d):
            if decision is None:
                mask = d.get(self.mask_key) if self.mask_key else None
                decision = self.flipper.decide(d[key], d.get(self.laterality_key), mask)
                d[key] = self.flipper(d[key], flip=decision[0])
                if isinstance(d[key], MetaTensor):
                    d[key].meta.update(pixel_side=decision[1], laterality_mismatch=decision[2])
            else:
                d[key] = self.flipper(d[key], flip=decision[0])
        if decision is not None:
            d[self.flipped_key], d[self.pixel_side_key], d[self.mismatch_key] = decision
        return d
