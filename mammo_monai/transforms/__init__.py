"""MONAI transforms for mammograms; each array transform has a dictionary ``...d`` twin."""

from mammo_monai.transforms.augment import RandMammoAugment, RandMammoAugmentd
from mammo_monai.transforms.intensity import ScaleMammogram, ScaleMammogramd
from mammo_monai.transforms.lesion_mask import LesionMask, LesionMaskd
from mammo_monai.transforms.mask import (
    BreastMask,
    BreastMaskd,
    bounding_box,
    film_border_bands,
)
from mammo_monai.transforms.orientation import FlipToChestWallLeft, FlipToChestWallLeftd, chest_wall_side, tissue_side
from mammo_monai.transforms.pipelines import eval_transforms, preprocess_transforms, train_transforms
from mammo_monai.transforms.resize import DEFAULT_SIZE, ResizeMammogram, ResizeMammogramd, resize_mask

__all__ = [
    "DEFAULT_SIZE",
    "BreastMask",
    "BreastMaskd",
    "FlipToChestWallLeft",
    "FlipToChestWallLeftd",
    "LesionMask",
    "LesionMaskd",
    "RandMammoAugment",
    "RandMammoAugmentd",
    "ResizeMammogram",
    "ResizeMammogramd",
    "ScaleMammogram",
    "ScaleMammogramd",
    "bounding_box",
    "chest_wall_side",
    "eval_transforms",
    "film_border_bands",
    "preprocess_transforms",
    "resize_mask",
    "tissue_side",
    "train_transforms",
]
