"""Inputs of the segment-then-classify recipe. Self-supervised pretraining: the cached mammogram, a corrupted copy to restore, and the original
as the target (MONAI's coarse dropout and coarse shuffle, as in MONAI's self-supervised tutorials).

Masked-region reconstruction needs no labels, so every image counts; dropping and shuffling blocks makes
the network learn breast texture and structure rather than copy pixels. Segmentation: the cached
mammogram and the union of its cached lesion masks as the target, augmented together.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.transforms import (
    Compose,
    CopyItemsd,
    EnsureTyped,
    Lambda,
    MapTransform,
    RandCoarseDropoutd,
    RandCoarseShuffled,
    Randomizable,
)
from monai.utils import TransformBackends

from mammo_monai.transforms.augment import RandMammoAugmentd
from mammo_monai.transforms.lesion_mask import LesionMaskd
from mammo_monai.transforms.pipelines import eval_transforms


class ReseedPerItemd(MapTransform):
    """Apply a random transform with a seed drawn from the item's file name, so validation sees the same
    corruption of each image every epoch (a fair comparison between epochs)."""

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]  # the data pass through to ``transform``

    def __init__(self, transform: Randomizable, key: str = "image") -> None:
        super().__init__([key])
        self.transform, self.key = transform, key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        meta = getattr(d[self.key], "meta", {}) or {}
        name = str(meta.get("filename_or_obj") or meta.get("source") or d.get("image_id", ""))
        self.transform.set_random_state(seed=zlib.crc32(name.encode()))
        return self.transform(d)


def _drop_label_and_masks(data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
    return {k: v for k, v in data.items() if k not in ("label", "masks")}


def _drop_masks(data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
    return {k: v for k, v in data.items() if k != "masks"}  # a list of paths per image does not collate


def corruption(
    image_size: Sequence[int], holes: int = 8, hole_fraction: float = 0.08, shuffle_prob: float = 0.8
) -> Compose:
    """Drop ``holes`` blocks (each side up to ``hole_fraction`` of the image's, at least half of that)
    to zero, then shuffle the pixels inside as many blocks with probability ``shuffle_prob``."""
    low = [max(2, int(s * hole_fraction / 2)) for s in image_size]
    high = [max(3, int(s * hole_fraction)) for s in image_size]
    return Compose(
        [
            RandCoarseDropoutd("image", holes=holes, spatial_size=low, max_spatial_size=high, fill_value=0.0, prob=1.0),
            RandCoarseShuffled("image", holes=holes, spatial_size=low, max_spatial_size=high, prob=shuffle_prob),
        ]
    )


def ssl_transforms(
    image_size: Sequence[int],
    validation: bool = False,
    holes: int = 8,
    hole_fraction: float = 0.08,
    shuffle_prob: float = 0.8,
) -> Compose:
    """Cached image -> ``{"image": corrupted, "label": original}`` for reconstruction pretraining.

    Args:
        image_size: (H, W) of the cache, to size the blocks.
        validation: one fixed corruption per image (:class:`ReseedPerItemd`) instead of a new one each time.
        holes, hole_fraction, shuffle_prob: see :func:`corruption`.
    """
    steps = list(eval_transforms(from_cache=True).transforms)[:-1]
    corrupt = corruption(image_size, holes, hole_fraction, shuffle_prob)
    steps += [
        Lambda(_drop_label_and_masks),  # the image-level label is not the target here
        CopyItemsd("image", names="label"),
        ReseedPerItemd(corrupt) if validation else corrupt,
        EnsureTyped(["image", "label"], track_meta=False),
    ]
    return Compose(steps)


def segmentation_transforms(train: bool = True, augment: dict[str, Any] | None = None) -> Compose:
    """Cached image and its lesion masks -> ``{"image", "label": (1, H, W) 0/1}`` for the segmenter.

    The target replaces the image-level label under ``label`` (what the trainer's loss reads); with
    ``train``, the project's augmentation moves image and target together (:class:`RandMammoAugmentd`
    with the target as a mask key).
    """
    steps = list(eval_transforms(from_cache=True).transforms)[:-1]
    steps += [LesionMaskd(keys="masks", image_key="image", label_key="label"), Lambda(_drop_masks)]
    if train:
        steps.append(RandMammoAugmentd("image", mask_keys=["label"], **(augment or {})))
    steps.append(EnsureTyped(["image", "label"], track_meta=False))
    return Compose(steps)
