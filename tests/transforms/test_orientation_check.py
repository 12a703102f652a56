"""Chest wall side from the mask's shape, and the record of laterality metadata disagreeing with the pixels."""

from __future__ import annotations

import numpy as np
import torch

from mammo_monai.io import as_metatensor
from mammo_monai.synthetic.phantom import filling_breast
from mammo_monai.transforms.orientation import FlipToChestWallLeft, FlipToChestWallLeftd, chest_wall_side, tissue_side
from mammo_monai.transforms.pipelines import preprocess_transforms
from tests.conftest import make_breast


def _large(side: str, seed: int = 0) -> np.ndarray:
    img, _ = filling_breast(np.random.default_rng(seed), (480, 400))
    return img if side == "L" else img[:, ::-1].copy()


def test_breast_filling_the_film_is_oriented_by_its_chest_wall():
    for side in ("L", "R"):
        img = torch.from_numpy(_large(side)[None])
        half = img.shape[-1] // 2  # the old guess: the brighter half is the chest wall; here it is the nipple side
        assert (float(img[..., :half].sum()) >= float(img[..., half:].sum())) != (side == "L")
        assert tissue_side(img) == side
        assert FlipToChestWallLeft()(as_metatensor(img.numpy())).meta["flipped"] is (side == "R")


def test_chest_wall_side_reads_the_edge_the_mask_spans():
    mask = torch.zeros(1, 100, 80, dtype=torch.bool)
    rows, cols = torch.meshgrid(torch.arange(100), torch.arange(80), indexing="ij")
    mask[0] = ((rows - 50) / 70.0) ** 2 + (cols / 90.0) ** 2 < 1  # fills the film, touches all four edges
    assert chest_wall_side(mask) == "L" and chest_wall_side(mask.flip(-1)) == "R"
    assert chest_wall_side(torch.ones(1, 100, 80)) is None  # nothing to tell: the intensity decides


def test_disagreement_between_laterality_and_pixels_is_recorded():
    pixels, region, _ = make_breast((240, 180), side="L")
    d = FlipToChestWallLeftd(["image", "mask"])(
        {"image": as_metatensor(pixels[None]), "mask": torch.from_numpy(region[None]), "laterality": "R"}
    )
    assert d["flipped"] is True  # metadata first
    assert d["pixel_side"] == "L" and d["laterality_mismatch"] is True
    assert d["image"].meta["laterality_mismatch"] is True and d["image"].meta["pixel_side"] == "L"
    same = FlipToChestWallLeftd("image")({"image": as_metatensor(pixels[None], {"laterality": "L"})})
    assert same["flipped"] is False and same["laterality_mismatch"] is False and same["pixel_side"] == "L"


def test_preprocessing_reports_a_mislabelled_large_breast():
    img = as_metatensor(_large("R")[None] * 60000, {"laterality": "L"})  # stored as a right breast, labelled left
    d = preprocess_transforms(size=(120, 100), load=False)({"image": img})
    assert d["flipped"] is False and d["pixel_side"] == "R" and d["laterality_mismatch"] is True
