"""MONAI transforms for mammograms; each array transform has a dictionary ``...d`` twin."""

from mammo_monai.transforms.augment import RandMammoAugment, RandMammoAugmentd
from mammo_monai.transforms.intensity import ScaleMammogram, ScaleMammogramd
from mammo_monai.transforms.mask import BreastMask, SegmentBreast, SegmentBreastd, bounding_box
from mammo_monai.transforms.orientation import FlipToChestWallLeft, FlipToChestWallLeftd, tissue_side
from mammo_monai.transforms.pipelines import eval_transforms, preprocess_transforms, train_transforms
from mammo_monai.transforms.resize import DEFAULT_SIZE, ResizeMammogram, ResizeMammogramd

__all__ = [
    "DEFAULT_SIZE",
    "BreastMask",
    "FlipToChestWallLeft",
    "FlipToChestWallLeftd",
    "RandMammoAugment",
    "RandMammoAugmentd",
    "ResizeMammogram",
    "ResizeMammogramd",
    "ScaleMammogram",
    "ScaleMammogramd",
    "SegmentBreast",
    "SegmentBreastd",
    "bounding_box",
    "eval_transforms",
    "preprocess_transforms",
    "tissue_side",
    "train_transforms",
]
