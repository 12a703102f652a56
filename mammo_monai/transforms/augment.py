"""Training augmentation: flips, RandAffine rotation / zoom / shear, intensity shift (all MONAI), as a list of
transforms (:func:`mammo_augmentation`) or one seeded transform (:class:`RandMammoAugmentd`)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    MapTransform,
    RandAffined,
    RandFlipd,
    Randomizable,
    RandShiftIntensityd,
)
from monai.utils import ensure_tuple


def mammo_augmentation(
    keys: KeysCollection,
    mask_keys: Sequence[str] = (),
    prob_flip: float = 0.5,
    rotate_deg: float = 25.0,
    zoom: Sequence[float] = (0.8, 1.2),
    shear_deg: float = 12.0,
    prob_affine: float = 0.9,
    intensity_shift: float = 0.2,
    prob_intensity: float = 0.5,
) -> list[MapTransform]:
    """Shen et al.'s augmentation as a list of MONAI transforms, the list the bundles' ``common_train.yaml``
    writes out as ``augmentation_transforms``: horizontal and vertical flips, an affine with rotation
    ±``rotate_deg``, zoom ``zoom`` (a (min, max) scale) and shear ±``shear_deg``, then an intensity shift
    of up to ±``intensity_shift`` of the [0, 1] range. Masks (``mask_keys``) follow every spatial step by
    nearest neighbour and skip the intensity shift.

    Args:
        keys: image keys.
        mask_keys: keys moved with the image but never interpolated.
        prob_flip, prob_affine, prob_intensity: probabilities of each step.
    """
    images = list(ensure_tuple(keys))
    masks = [k for k in mask_keys if k not in images]
    spatial = images + masks
    modes = ["bilinear"] * len(images) + ["nearest"] * len(masks)
    # MONAI's scale_range is added to 1: zoom (0.8, 1.2) -> scale_range (-0.2, 0.2) (rounded: 0.8 - 1 is not -0.2)
    scale = (round(float(zoom[0]) - 1.0, 12), round(float(zoom[1]) - 1.0, 12))
    shear = math.tan(math.radians(shear_deg))
    return [
        RandFlipd(spatial, prob=prob_flip, spatial_axis=1, allow_missing_keys=True),
        RandFlipd(spatial, prob=prob_flip, spatial_axis=0, allow_missing_keys=True),
        RandAffined(
            spatial,
            prob=prob_affine,
            rotate_range=math.radians(rotate_deg),
            scale_range=(scale, scale),
            shear_range=(shear, shear),
            mode=modes,
            padding_mode="zeros",
            allow_missing_keys=True,
        ),
        RandShiftIntensityd(images, offsets=intensity_shift, prob=prob_intensity, allow_missing_keys=True),
    ]


class RandMammoAugmentd(Randomizable, MapTransform):
    """:func:`mammo_augmentation` as one seeded MONAI transform (its steps seeded from this transform's
    seed); a pipeline that lists the steps instead draws differently for the same seed. The output keeps
    the input's shape.

    Args:
        keys: image keys.
        mask_keys: keys moved with the image but never interpolated.
        allow_missing_keys: skip a key the data lack.
        settings: ``prob_flip``, ``rotate_deg``, ``zoom``, ``shear_deg``, ``prob_affine``, ``intensity_shift``,
            ``prob_intensity``: the keyword arguments (and defaults) of :func:`mammo_augmentation`.
    """

    def __init__(
        self, keys: KeysCollection, mask_keys: Sequence[str] = (), *, allow_missing_keys: bool = False, **settings: Any
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.pipeline = Compose(mammo_augmentation(self.keys, mask_keys, **settings))

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandMammoAugmentd:
        super().set_random_state(seed, state)
        self.pipeline.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:  # each step draws its own parameters
        pass

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        return self.pipeline(dict(data))


class RandMammoAugment(Randomizable):
    """Array version of :class:`RandMammoAugmentd` for a single (C, H, W) image; same arguments."""

    def __init__(self, **kwargs: Any) -> None:
        self.augment = RandMammoAugmentd("img", **kwargs)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandMammoAugment:
        super().set_random_state(seed, state)
        self.augment.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        pass

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return self.augment({"img": img})["img"]
