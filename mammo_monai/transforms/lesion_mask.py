"""The segmentation target of an image: the union of its lesion masks as one (1, H, W) channel."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

from mammo_monai.io.raster import read_raster


class LesionMask(Transform):
    """Read lesion mask PNGs (8 or 16 bit, lesion > 0) and return their union as a float 0/1
    tensor (1, H, W), rows first as everywhere in the package.

    The masks are the manifest's ``cached_mask`` files, in the cached image's pixels: read with the
    package's raster reader (Pillow, no axis swap), so they line up with an image loaded by
    :class:`mammo_monai.io.LoadMammogramd` from the cache.

    Args:
        image_name: named in the shape error (the image the masks belong to).
    """

    backend = [TransformBackends.TORCH]

    def __call__(
        self, masks: Sequence[str | os.PathLike], spatial_shape: Sequence[int], image_name: str = "the image"
    ) -> torch.Tensor:
        """Union of ``masks``; zeros of ``spatial_shape`` (H, W) when there is none.

        Raises:
            ValueError: naming the file, when a mask's shape differs from ``spatial_shape`` (an image
                resized after loading, or a mask of another cache).
            mammo_monai.io.MammogramError: a mask file missing or unreadable.
        """
        shape = tuple(int(s) for s in spatial_shape)
        out = torch.zeros((1, *shape), dtype=torch.float32)
        for path in masks:
            pixels, _ = read_raster(path)
            if tuple(pixels.shape[-2:]) != shape:
                raise ValueError(
                    f"{path}: lesion mask is {pixels.shape[-2]}x{pixels.shape[-1]} but {image_name} is "
                    f"{shape[0]}x{shape[1]}; apply LesionMaskd right after loading the cached image, before any resize"
                )
            out = torch.maximum(out, torch.from_numpy(pixels[:1] > 0).float())
        return out


class LesionMaskd(MapTransform):
    """Dictionary version of :class:`LesionMask`: the masks listed under ``keys`` (the records of
    :func:`mammo_monai.data.segmentation.segmentation_records` keep them under ``masks``) become the
    target under ``label_key``, of the spatial shape of the loaded image under ``image_key``.

    Put it after loading (and intensity scaling) and before any spatial transform; spatial
    augmentation must then move ``label_key`` with the image (e.g. ``RandMammoAugmentd(mask_keys=
    ["seg"])``). When the image is a ``MetaTensor`` the target is one too, with the image's affine.

    Args:
        keys: keys holding lists of mask paths (their union is taken over all keys).
        image_key: key of the loaded image (C, H, W).
        label_key: key the (1, H, W) float 0/1 target is written to.
        allow_missing_keys: no error when a mask key is absent (then: no masks, zeros).
    """

    backend = LesionMask.backend

    def __init__(
        self,
        keys: KeysCollection = "masks",
        image_key: str = "image",
        label_key: str = "seg",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.image_key, self.label_key = image_key, label_key
        self.reader = LesionMask()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image = d.get(self.image_key)
        if not isinstance(image, torch.Tensor) or image.ndim < 2:
            raise ValueError(
                f"LesionMaskd: {self.image_key!r} must hold the loaded image (C, H, W) to size the lesion "
                f"target, got {type(image).__name__}; load the image first"
            )
        paths: list[str] = []
        for key in self.key_iterator(d):
            value = d[key]
            paths += [value] if isinstance(value, (str, os.PathLike)) else [str(p) for p in value or []]
        name = image.meta.get("filename_or_obj") if isinstance(image, MetaTensor) else None
        name = name or (f"image {d['image_id']}" if d.get("image_id") else "the image")
        seg = self.reader(paths, image.shape[-2:], image_name=str(name))
        d[self.label_key] = MetaTensor(seg, affine=image.affine.clone()) if isinstance(image, MetaTensor) else seg
        return d
