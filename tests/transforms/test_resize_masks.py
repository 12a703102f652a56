"""Resizing lesion masks without losing small findings, and padding away from the chest wall."""

from __future__ import annotations

import numpy as np
import torch

from mammo_monai.io import as_metatensor
from mammo_monai.transforms.pipelines import preprocess_transforms
from mammo_monai.transforms.resize import ResizeMammogramd
from tests.conftest import make_breast


def test_three_pixel_calcification_cluster_survives_the_resize():
    lesion = torch.zeros(1, 4000, 3000, dtype=torch.uint8)
    lesion[0, 2007:2010, 1507:1510] = 1  # a 3 x 3 cluster between nearest neighbour's samples
    d = ResizeMammogramd("image", size=(1152, 896), mask_keys=["lesion"])(
        {"image": torch.zeros(1, 4000, 3000), "lesion": lesion}
    )
    out = d["lesion"][0]
    assert tuple(out.shape) == (1152, 896) and set(torch.unique(out).tolist()) == {0.0, 1.0}
    rows, cols = torch.nonzero(out, as_tuple=True)
    assert 1 <= len(rows) <= 4 and abs(float(rows.float().mean()) - 2008 * 1152 / 4000) < 1.5
    assert abs(float(cols.float().mean()) - 1508 * 896 / 3000) < 1.5


def test_breast_mask_is_resized_by_majority_so_its_outline_does_not_grow():
    mask = torch.zeros(1, 400, 300)
    mask[0, 100:300, :149] = 1  # the last output column would see 1 of its 4 input columns inside
    out = ResizeMammogramd("image", size=(100, 75))({"image": torch.zeros(1, 400, 300), "mask": mask})["mask"][0]
    assert int(out.sum()) == 50 * 37 and bool(out[25:75, :37].all())


def test_keep_aspect_pads_away_from_the_chest_wall_of_a_right_breast():
    pixels, region, _ = make_breast((240, 120), side="R", with_lesion=False)  # tall: the pad goes to the columns
    d = preprocess_transforms(size=(120, 100), keep_aspect=True, load=False)(
        {"image": as_metatensor(pixels[None], {"laterality": "R"})}
    )
    img, mask = d["image"][0].numpy(), d["mask"][0].numpy()
    assert img.shape == mask.shape == (120, 100) and d["flipped"] is True
    assert img[:, 0].max() > 0 and mask[:, 0].sum() > 40  # chest wall at column 0, not the pad
    assert img[:, 60:].max() == 0 and mask[:, 60:].max() == 0  # 240 x 120 -> 120 x 60, pad on the right


def test_crop_moves_lesion_masks_with_the_image_and_records_the_box():
    pixels, region, lesion = make_breast((480, 360), side="R")
    d = preprocess_transforms(size=(120, 90), crop=True, extra_mask_keys=["lesion"], load=False)(
        {"image": as_metatensor(pixels[None], {"laterality": "R"}), "lesion": torch.from_numpy(lesion[None])}
    )
    rows, cols = np.nonzero(region)
    r0, r1, c0, c1 = d["image"].meta["breast_bbox"]
    assert abs(r0 - rows.min()) <= 2 and abs(r1 - rows.max() - 1) <= 2 and abs(c0 - cols.min()) <= 2 and c1 == 360
    out, les = d["image"][0].numpy(), d["lesion"][0].numpy() > 0
    assert out.shape == les.shape == (120, 90) and les.any()
    assert out[les].mean() > out[(d["mask"][0].numpy() > 0) & ~les].mean()  # the lesion mask sits on the bright mass
