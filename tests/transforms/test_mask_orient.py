from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import MaskIntensityd

from mammo_monai.io import MammogramError, as_metatensor
from mammo_monai.transforms import BreastMask, BreastMaskd, FlipToChestWallLeft, FlipToChestWallLeftd
from tests.conftest import make_breast


def test_masking_removes_the_label_and_keeps_the_lesion():
    pixels, region, lesion = make_breast((240, 180))
    label = (pixels > 0.8 * 60000) & ~region
    assert label.sum() > 20  # the fixture did burn a label outside the breast
    masked = BreastMaskd("image")({"image": as_metatensor(pixels[None])})  # as the pipelines mask: find, then apply
    out = MaskIntensityd("image", mask_key="mask")(masked)["image"]
    assert float(out[0][torch.from_numpy(label)].max()) == 0.0
    assert torch.equal(out[0][torch.from_numpy(lesion)], torch.from_numpy(pixels[lesion].astype(np.float32)))
    assert 0.2 < out.meta["mask_fraction"] < 0.8


def test_mask_fills_holes_and_is_largest_region():
    img = np.zeros((1, 100, 80), np.float32)
    img[0, 10:90, 0:50] = 1000
    img[0, 40:50, 20:30] = 0  # a hole inside the breast
    img[0, 5:8, 70:78] = 4000  # a bright marker, not connected
    mask = BreastMask(working_size=None)(torch.from_numpy(img))[0]
    assert bool(mask[45, 25]) and not bool(mask[6, 72]) and int(mask.sum()) == 80 * 50


def test_mask_at_working_resolution_matches_full_resolution():
    pixels, *_ = make_breast((600, 400))
    full = BreastMask(working_size=None)(torch.from_numpy(pixels[None].astype(np.float32)))
    fast = BreastMask(working_size=200)(torch.from_numpy(pixels[None].astype(np.float32)))
    assert fast.shape == full.shape
    assert (fast != full).float().mean() < 0.01


def test_crop_to_breast_bounding_box_records_it():
    pixels, region, _ = make_breast((240, 180))
    d = BreastMaskd("image", crop=True, crop_keys=["roi"])(
        {"image": as_metatensor(pixels[None]), "roi": torch.zeros(1, 240, 180)}
    )
    rows, cols = np.nonzero(region)
    r0, r1, c0, c1 = d["image"].meta["breast_bbox"]
    assert (r0, c0) == (rows.min(), cols.min()) and d["image"].shape[-2:] == (r1 - r0, c1 - c0)
    assert d["mask"].shape == d["image"].shape == d["roi"].shape


@pytest.mark.parametrize("value", [0.0, 1234.0])
def test_constant_image_raises_naming_the_file(value):
    img = as_metatensor(np.full((1, 50, 40), value), {"source_path": "/data/flat.dcm"})
    with pytest.raises(MammogramError, match="/data/flat.dcm: constant or empty image"):
        BreastMask()(img)


def test_right_breast_is_flipped_from_metadata():
    pixels, *_ = make_breast((240, 180), side="R")
    img = as_metatensor(pixels[None], {"laterality": "R"})
    out = FlipToChestWallLeft()(img)
    assert out.meta["flipped"] is True
    assert torch.equal(out[0], torch.from_numpy(pixels[:, ::-1].astype(np.float32).copy()))


def test_side_inferred_from_tissue_without_laterality():
    right, *_ = make_breast((240, 180), side="R")
    left, *_ = make_breast((240, 180), side="L")
    flip = FlipToChestWallLeft()
    assert flip(as_metatensor(right[None])).meta["flipped"] is True
    assert flip(as_metatensor(left[None])).meta["flipped"] is False


def test_dict_flip_moves_masks_with_the_image():
    pixels, region, _ = make_breast((240, 180), side="R")
    d = FlipToChestWallLeftd(["image", "mask"])(
        {"image": as_metatensor(pixels[None]), "mask": torch.from_numpy(region[None]), "laterality": "R"}
    )
    assert d["flipped"] is True
    assert torch.equal(d["mask"][0], torch.from_numpy(region[:, ::-1].copy()))
