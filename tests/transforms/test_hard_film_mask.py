"""Film artefacts that survived the masking on real film (mini-MIAS), and a breast that fills the film.

Labels pressed against the skin line and film edges inset from the image edge by black padding touch
the breast along a long stretch, where no opening cuts them; a breast that fills the whole film
leaves its mask no shape to read the chest wall side from.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from mammo_monai.io import as_metatensor
from mammo_monai.synthetic.film import add_hard_film_artefacts
from mammo_monai.synthetic.phantom import breast_tissue, full_width_breast
from mammo_monai.transforms.mask import BreastMask
from mammo_monai.transforms.orientation import FlipToChestWallLeft, tissue_side
from mammo_monai.transforms.pipelines import preprocess_transforms

SHAPE = (512, 512)


def _film(kinds: list[str], side: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An 8-bit-like MLO film with the hard artefacts ``kinds``; (image, visible breast, not breast)."""
    rng = np.random.default_rng(seed)
    img, region, _ = breast_tissue(rng, SHAPE, "MLO", density=2)
    junk = add_hard_film_artefacts(img, region, rng, chest_wall_left=True, kinds=kinds)
    if side == "R":
        img, region, junk = img[:, ::-1].copy(), region[:, ::-1].copy(), junk[:, ::-1].copy()
    return np.round(img * 255) / 255, region & ~junk, junk


@pytest.mark.parametrize("kinds", [["inset_strip"], ["top_strip"], ["broad_label"], ["top_strip", "inset_strip"]])
@pytest.mark.parametrize("side", ["L", "R"])
def test_strip_or_label_touching_the_breast_along_its_length_is_masked_out(kinds, side):
    for seed in range(2):
        img, breast, junk = _film(kinds, side, seed)
        mask = BreastMask()(torch.from_numpy(img[None].astype(np.float32)))[0].numpy()
        kept = mask & junk & ~ndimage.binary_dilation(breast, iterations=3)
        assert kept.sum() <= 40, f"{kept.sum()} px of {kinds} kept (seed {seed})"
        assert (mask & breast).sum() / breast.sum() >= 0.99


def test_bright_tissue_and_pectoral_at_the_outline_are_kept():
    rng = np.random.default_rng(4)
    img, region, _ = breast_tissue(rng, SHAPE, "MLO", density=4)
    img[200:260, 60:140] = 0.95  # a bright dense block inside the breast: not a label
    img[region & (np.arange(SHAPE[1])[None, :] < 40)] = 0.97  # a bright band of chest wall along the edge
    mask = BreastMask()(torch.from_numpy(img[None]))[0].numpy()
    assert (mask & region).sum() / region.sum() >= 0.995


def _full(side: str, seed: int) -> np.ndarray:
    img, _ = full_width_breast(np.random.default_rng(seed), SHAPE)
    return img if side == "L" else img[:, ::-1].copy()


@pytest.mark.parametrize("side", ["L", "R"])
def test_breast_filling_the_whole_film_width_is_oriented_by_its_pectoral_muscle(side):
    for seed in range(3):
        img = _full(side, seed)
        half = img.shape[1] // 2  # the dense cone makes the nipple half the brighter
        assert (img[:, :half].sum() > img[:, half:].sum()) != (side == "L")
        t = torch.from_numpy(img[None])
        assert BreastMask()(t).all()  # the mask has no shape to read
        assert tissue_side(t) == side
        assert FlipToChestWallLeft()(as_metatensor(img[None])).meta["flipped"] is (side == "R")


def test_preprocessing_orients_a_full_width_film_without_laterality():
    big = np.kron(_full("R", 1), np.ones((4, 4), np.float32))  # 2048 rows: the mask is found at the working size
    d = preprocess_transforms(size=(128, 96), load=False)({"image": as_metatensor(big[None] * 255)})
    assert d["flipped"] is True and d["pixel_side"] == "R"
