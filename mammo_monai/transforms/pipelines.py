"""Ready-made Compose pipelines that bundle configs and commands reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai.transforms import Compose, EnsureTyped, MaskIntensityd

from mammo_monai.io.dicom import MAMMOGRAPHY_MODALITIES
from mammo_monai.io.reader import LoadMammogramd
from mammo_monai.transforms.augment import mammo_augmentation
from mammo_monai.transforms.intensity import ScaleMammogramd
from mammo_monai.transforms.mask import BreastMaskd
from mammo_monai.transforms.orientation import FlipToChestWallLeftd
from mammo_monai.transforms.resize import DEFAULT_SIZE, GridRecordd, PadEndd, ResizeMammogramd


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
    modalities: Sequence[str] | None = MAMMOGRAPHY_MODALITIES,
) -> Compose:
    """File -> masked, chest-wall-left, resized, [0, 1] image (1, H, W) plus its breast mask.

    The dictionary also gets ``flipped``, ``pixel_side`` and ``laterality_mismatch`` (see
    :class:`FlipToChestWallLeftd`). The image's ``meta["grid_chain"]`` records the crop, resize, flip and pad
    (:func:`~mammo_monai.transforms.resize.record_grid_step`): ``mammo_monai.inference.original_grid`` maps
    network-frame maps and points back onto the file's pixels with it.

    Args:
        size: output (H, W).
        image_key, mask_key: dictionary keys of the image and of the breast mask it produces.
        extra_mask_keys: already-loaded masks (lesion ROIs) to crop, flip and resize with the image.
        keep_aspect: pad (bottom and right, away from the chest wall) instead of stretching.
        crop: crop to the breast's bounding box before resizing.
        intensity: "bit_depth", "container" or "percentile" (see :class:`ScaleMammogram`).
        load: start with :class:`LoadMammogramd`; False when the dictionary already holds tensors.
        modalities: DICOM Modality values :class:`LoadMammogramd` accepts (default MG; None: any).
    """
    masks = [mask_key, *extra_mask_keys]
    steps: list[Any] = [LoadMammogramd(image_key, modalities=modalities)] if load else []
    # The breast mask is found on a ~1024-px copy of the FULL image (masking after the anisotropic,
    # anti-aliased resize keeps about twice as many film artefacts), then resized with the image and
    # applied at the output size: nothing but the resize runs at ~4600 x 2800. The crop changes the
    # aspect, so it comes before the resize; the pad (keep_aspect) comes after the flip, so it lies
    # on the right, away from the chest wall, for both breasts.
    steps += [
        BreastMaskd(image_key, mask_key=mask_key, threshold=threshold, crop=crop, crop_keys=extra_mask_keys),
        ResizeMammogramd(
            image_key, size=size, keep_aspect=keep_aspect, mask_keys=extra_mask_keys, region_keys=[mask_key], pad=False
        ),
        MaskIntensityd(image_key, mask_key=mask_key),
        FlipToChestWallLeftd([image_key, *masks], mask_key=mask_key, allow_missing_keys=True),
    ]
    if keep_aspect:
        steps.append(PadEndd([image_key, *masks], spatial_size=size))
    steps += [
        ScaleMammogramd(image_key, mode=intensity),
    ]
    return Compose(steps)


def eval_transforms(
    size: Sequence[int] = DEFAULT_SIZE, image_key: str = "image", from_cache: bool = False, **kwargs: Any
) -> Compose:
    """Evaluation / inference pipeline.

    Args:
        from_cache: the files are the 16-bit PNGs written by ``mammo-monai preprocess`` (already
            masked, oriented and resized): only load and scale them. Otherwise ``data["grid"]`` records
            the way back to the original image (:class:`~mammo_monai.transforms.resize.GridRecordd`).
        kwargs: passed to :func:`preprocess_transforms`.
    """
    if from_cache:
        steps: list[Any] = [LoadMammogramd(image_key), ScaleMammogramd(image_key, mode="container")]
    else:
        steps = list(preprocess_transforms(size=size, image_key=image_key, **kwargs).transforms)
        steps.append(GridRecordd(image_key))  # the meta goes below: keep the way back to the original grid
    return Compose([*steps, EnsureTyped(image_key, track_meta=False)])


def train_transforms(
    size: Sequence[int] = DEFAULT_SIZE,
    image_key: str = "image",
    from_cache: bool = False,
    augment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Compose:
    """Training pipeline: :func:`eval_transforms` steps with :func:`mammo_augmentation`'s steps listed
    before the final ``EnsureTyped``. With ``from_cache`` it is the pipeline the bundles list in
    ``common_train.yaml`` (``preprocessing_transforms + augmentation_transforms + final_transforms``), and
    draws the same for the same seed.

    Args:
        augment: overrides for :func:`mammo_augmentation` (e.g. ``{"rotate_deg": 15}``).
    """
    steps = list(eval_transforms(size, image_key, from_cache, **kwargs).transforms)
    return Compose([*steps[:-1], *mammo_augmentation(image_key, **(augment or {})), steps[-1]])
