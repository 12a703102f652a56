"""Resize mammograms to the network size (default 1152 x 896, H x W), optionally keeping the aspect."""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Resize, SpatialPad, SpatialPadd, Transform
from monai.utils import TransformBackends

DEFAULT_SIZE = (1152, 896)


class ResizeMammogram(Transform):
    """Resize a (C, H, W) image to ``size``.

    Args:
        size: (H, W) of the output.
        keep_aspect: scale by the smaller of the two ratios and pad the end of each axis (bottom,
            right: away from a chest wall on the left) with zeros, so original coordinates map to
            output coordinates by one factor. Orient the image first (or pad after orienting, with
            ``pad=False``) so that a right breast's pad does not land next to its chest wall.
        mode: interpolation; None picks "area" when shrinking (anti-aliased, as fast as bilinear)
            and "bilinear" when enlarging. Masks: see :func:`resize_mask`.
        pad: with ``keep_aspect``, pad to ``size`` here; False leaves the scaled image unpadded.

    ``meta["scale"]`` records (row factor, column factor) from input to output pixels, and a "resize" step
    (and a "pad" step when it pads) is appended to ``meta["grid_chain"]`` (see :func:`record_grid_step`).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self, size: Sequence[int] = DEFAULT_SIZE, keep_aspect: bool = False, mode: str | None = None, pad: bool = True
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.keep_aspect = keep_aspect
        self.mode = mode
        self.pad = pad

    def target(self, shape: Sequence[int]) -> tuple[int, int]:
        """(H, W) before padding for an input of spatial ``shape``."""
        h, w = int(shape[-2]), int(shape[-1])
        if not self.keep_aspect:
            return self.size
        s = min(self.size[0] / h, self.size[1] / w)
        return min(self.size[0], max(1, round(h * s))), min(self.size[1], max(1, round(w * s)))

    def __call__(self, img: torch.Tensor, mode: str | None = None, target: Sequence[int] | None = None) -> torch.Tensor:
        """Resize ``img``; ``target`` (H, W before padding) overrides :meth:`target` (a mask found at
        another resolution takes its image's output shape)."""
        h, w = img.shape[-2:]
        th, tw = tuple(target) if target is not None else self.target(img.shape)
        mode = mode or self.mode or ("area" if th * tw < h * w else "bilinear")
        kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        out = img if (th, tw) == (h, w) else Resize((th, tw), mode=mode, **kwargs)(img)
        padded = self.keep_aspect and self.pad and (th, tw) != self.size
        if padded:
            out = SpatialPad(self.size, method="end")(out)
        if isinstance(out, MetaTensor):
            out.meta["scale"] = [th / h, tw / w]
            record_grid_step(out, "resize", (h, w), (th, tw))
            if padded:
                record_grid_step(out, "pad", (th, tw), self.size)
        return out


def record_grid_step(img: torch.Tensor, op: str, before: Sequence[int], after: Sequence[int], **extra: Any) -> None:
    """Append one spatial step to ``img.meta["grid_chain"]`` (a MetaTensor; anything else is left alone).

    The chain lists, in order, what preprocessing did to the pixel grid of the file as loaded:
    ``{"op": "crop" | "resize" | "flip" | "pad", "in": [H, W], "out": [H, W], ...}`` with ``box``
    (row0, row1, col0, col1 in the input) for a crop and ``flipped`` for a flip; a pad adds rows and
    columns at the end (bottom, right). ``mammo_monai.inference.original_grid`` walks it backwards to
    put maps and points back on the original image. A new list is stored, never appended in place
    (a sliced or copied MetaTensor may share its meta's lists).
    """
    if isinstance(img, MetaTensor):
        step = {"op": op, "in": [int(before[-2]), int(before[-1])], "out": [int(after[-2]), int(after[-1])], **extra}
        img.meta["grid_chain"] = [*img.meta.get("grid_chain", []), step]


class PadEndd(SpatialPadd):
    """MONAI's ``SpatialPadd`` with ``method="end"`` (zeros at the bottom and right) that also records a
    "pad" step in each padded MetaTensor's ``meta["grid_chain"]`` (see :func:`record_grid_step`)."""

    backend = SpatialPadd.backend

    def __init__(self, keys: KeysCollection, spatial_size: Sequence[int], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, spatial_size=spatial_size, method="end", allow_missing_keys=allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any], lazy: bool | None = None) -> dict[Hashable, Any]:
        before = {key: tuple(data[key].shape[-2:]) for key in self.key_iterator(dict(data))}
        d = super().__call__(data, lazy)
        for key, shape in before.items():
            record_grid_step(d[key], "pad", shape, d[key].shape[-2:])
        return d


def resize_mask(
    resizer: ResizeMammogram, mask: torch.Tensor, keep_any: bool, target: Sequence[int] | None = None
) -> torch.Tensor:
    """Resize a binary (C, H, W) ``mask`` the way ``resizer`` resizes its image, as float 0/1.

    The mask is area-averaged ("area": each output pixel sees every input pixel it covers), then
    thresholded: ``keep_any`` keeps an output pixel that covers any foreground, so a lesion mask's
    3-pixel calcification cluster survives a 4x reduction (nearest neighbour samples one input pixel
    in 16 and loses it); otherwise a majority (>= 0.5) keeps an outline that neither grows nor shrinks.

    Args:
        target: output (H, W) before padding; None: what ``resizer`` picks for the mask's own shape.
    """
    x = (torch.as_tensor(mask) > 0).float()
    th, tw = tuple(target) if target is not None else resizer.target(x.shape)
    # enlarging both axes, every output pixel lies in one input pixel: nearest is exact (and 4x faster)
    mode = "nearest" if th >= x.shape[-2] and tw >= x.shape[-1] else "area"
    out = resizer(x, mode=mode, target=(th, tw))
    return (out > 1e-6).float() if keep_any else (out >= 0.5).float()


class ResizeMammogramd(MapTransform):
    """Dictionary version of :class:`ResizeMammogram`.

    Every mask gets the output shape of the first image key, whatever its own resolution (a breast
    mask found at a working resolution, a lesion mask a few pixels off).

    Args:
        keys: images, resized by ``mode``.
        mask_keys: lesion / ROI masks: an output pixel is foreground when it covers any foreground
            (see :func:`resize_mask`), so small calcification clusters survive the reduction.
        region_keys: region masks (the breast mask): majority vote, the outline keeps its place.
        pad: see :class:`ResizeMammogram`.
    """

    backend = ResizeMammogram.backend

    def __init__(
        self,
        keys: KeysCollection,
        size: Sequence[int] = DEFAULT_SIZE,
        keep_aspect: bool = False,
        mode: str | None = None,
        mask_keys: Sequence[str] = (),
        region_keys: Sequence[str] = ("mask",),
        pad: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.resizer = ResizeMammogram(size, keep_aspect, mode, pad)
        self.mask_keys = tuple(mask_keys)
        self.region_keys = tuple(region_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        target = None
        for key in self.key_iterator(d):
            target = target or self.resizer.target(d[key].shape)
            d[key] = self.resizer(d[key])
        for keys, keep_any in ((self.mask_keys, True), (self.region_keys, False)):
            for key in keys:
                if key in d:
                    d[key] = resize_mask(self.resizer, d[key], keep_any, target)
        return d


class GridRecordd(MapTransform):
    """Copy the image's ``grid_chain`` and pixel spacing into ``data[out_key]`` as a JSON string, so that a
    pipeline that drops the meta (``EnsureTyped(track_meta=False)``) and a DataLoader still carry what
    ``mammo_monai.inference.original_grid`` needs to map outputs back onto the original image (the string
    decoded is a meta mapping it accepts). Pixels are untouched.

    Args:
        keys: the image key (the first one found is recorded).
        out_key: where the JSON goes.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, keys: KeysCollection, out_key: str = "grid", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.out_key = out_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            meta = d[key].meta if isinstance(d[key], MetaTensor) else {}
            if meta.get("grid_chain"):
                spacing = [float(v) for v in meta.get("pixel_spacing", (float("nan"), float("nan")))]
                d[self.out_key] = json.dumps({"grid_chain": meta["grid_chain"], "pixel_spacing": spacing})
            break
        return d
