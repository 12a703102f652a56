"""Ready-made Compose pipelines that bundle configs and commands reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai.transforms import Compose, EnsureTyped

from mammo_monai.io.reader import LoadMammogramd
from mammo_monai.transforms.augment import RandMammoAugmentd
from mammo_monai.transforms.intensity import ScaleMammogramd
from mammo_monai.transforms.mask import SegmentBreastd
from mammo_monai.transforms.orientation import FlipToChestWallLeftd
from mammo_monai.transforms.resize import DEFAULT_SIZE, ResizeMammogramd


def preprocess_transforms(
    size: Sequence[int] = DEFAULT_SIZE,
    image_key: str = "image",
    mask_key: str = "mask",
    extra_mask_keys: Sequence[str] = (),
    keep_aspect: bool = False,
    crop: bool = False,
    intensity: str = "bit_depth",
    threshold: float = 0.05,
    load: bool = True,
) -> Compose:
    """File -> masked, chest-wall-left, resized, [0, 1] image (1, H, W) plus its breast mask.

    Args:
        size: output (H, W).
        image_key, mask_key: dictionary keys of the image and of the breast mask it produces.
        extra_mask_keys: already-loaded masks (lesion ROIs) to crop, flip and resize with the image.
        keep_aspect: pad instead of stretching.
        crop: crop to the breast's bounding box before resizing.
        intensity: "bit_depth" or "percentile" (see :class:`ScaleMammogram`).
        load: start with :class:`LoadMammogramd`; False when the dictionary already holds tensors.
    """
    masks = [mask_key, *extra_mask_keys]
    segment = SegmentBreastd(image_key, mask_key=mask_key, threshold=threshold, crop=crop, crop_keys=extra_mask_keys)
    steps: list[Any] = [LoadMammogramd(image_key)] if load else []
    if crop:  # the crop changes the aspect, so it must come before the resize
        steps += [segment, ResizeMammogramd(image_key, size=size, keep_aspect=keep_aspect, mask_keys=masks)]
    else:
        # Without a crop, masking after the (anti-aliased) resize finds the same outline at a
        # fraction of the cost: every later step then works on 1152 x 896 instead of ~4600 x 2700.
        steps += [ResizeMammogramd(image_key, size=size, keep_aspect=keep_aspect, mask_keys=extra_mask_keys), segment]
    steps += [
        FlipToChestWallLeftd([image_key, *masks], allow_missing_keys=True),
        ScaleMammogramd(image_key, mode=intensity),
    ]
    return Compose(steps)


def eval_transforms(size: Sequence[int] = DEFAULT_SIZE, image_key: str = "image", from_cache: bool = False, **kwargs: Any) -> Compose:
    """Evaluation / inference pipeline.

    Args:
        from_cache: the files are the 16-bit PNGs written by ``mammo-monai preprocess`` (already
            masked, oriented and resized): only load and scale them.
        kwargs: passed to :func:`preprocess_transforms`.
    """
    if from_cache:
        steps: list[Any] = [LoadMammogramd(image_key), ScaleMammogramd(image_key, mode="bit_depth")]
    else:
        steps = list(preprocess_transforms(size=size, image_key=image_key, **kwargs).transforms)
    return Compose([*steps, EnsureTyped(image_key, track_meta=False)])


def train_transforms(
    size: Sequence[int] = DEFAULT_SIZE,
    image_key: str = "image",
    from_cache: bool = False,
    augment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Compose:
    """Training pipeline: :func:`eval_transforms` steps plus :class:`RandMammoAugmentd`.

    Args:
        augment: overrides for :class:`RandMammoAugmentd` (e.g. ``{"rotate_deg": 15}``).
    """
    steps = list(eval_transforms(size, image_key, from_cache, **kwargs).transforms)[:-1]
    steps.append(RandMammoAugmentd(image_key, **(augment or {})))
    return Compose([*steps, EnsureTyped(image_key, track_meta=False)])
