from __future__ import annotations

import numpy as np
import torch

from mammo_monai.io import as_metatensor
from mammo_monai.transforms import (
    RandMammoAugment,
    RandMammoAugmentd,
    ResizeMammogram,
    ScaleMammogram,
    train_transforms,
)
from tests.conftest import make_breast


def test_resize_default_is_1152_by_896():
    out = ResizeMammogram()(as_metatensor(np.ones((1, 2304, 1792))))
    assert tuple(out.shape) == (1, 1152, 896) and out.meta["scale"] == [0.5, 0.5]


def test_keep_aspect_pads_bottom_and_right_only():
    img = np.zeros((1, 400, 200), np.float32)
    img[0, :, 0] = 1  # chest-wall column
    out = ResizeMammogram((100, 100), keep_aspect=True, mode="nearest")(as_metatensor(img))
    assert tuple(out.shape) == (1, 100, 100)
    assert out.meta["scale"] == [0.25, 0.25]
    assert float(out[0, :, 0].min()) == 1.0 and float(out[0, :, 50:].max()) == 0.0


def test_scale_by_bit_depth_uses_the_readers_range():
    img = as_metatensor(np.array([[[0, 2048, 4095]]], np.float32), {"intensity_range": [0.0, 4095.0]})
    np.testing.assert_allclose(ScaleMammogram()(img)[0, 0].numpy(), [0, 2048 / 4095, 1], rtol=1e-6)


def test_percentile_scaling_ignores_background_and_clips():
    rng = np.random.default_rng(0)
    img = np.zeros((1, 100, 100), np.float32)
    img[0, :, :50] = rng.uniform(1000, 2000, (100, 50))
    out = ScaleMammogram("percentile", lower=1, upper=99)(torch.from_numpy(img))
    tissue = out[0, :, :50]
    assert float(tissue.min()) == 0.0 and float(tissue.max()) == 1.0
    assert 0.4 < float(tissue.median()) < 0.6


def test_augmentation_is_reproducible_and_keeps_shape():
    pixels, region, _ = make_breast((120, 90))
    data = {"image": torch.from_numpy(pixels[None] / 60000.0).float(), "mask": torch.from_numpy(region[None]).float()}
    aug = RandMammoAugmentd("image", mask_keys=["mask"], prob_affine=1.0)
    a = aug.set_random_state(7)(data)
    b = aug.set_random_state(7)(data)
    c = aug.set_random_state(8)(data)
    assert a["image"].shape == data["image"].shape and a["mask"].shape == data["mask"].shape
    assert torch.equal(a["image"], b["image"]) and not torch.equal(a["image"], c["image"])
    assert set(torch.unique(a["mask"]).tolist()) <= {0.0, 1.0}  # masks are never interpolated


def test_array_augment_overrides_parameters():
    img = torch.rand(1, 64, 48)
    still = RandMammoAugment(prob_flip=0.0, prob_affine=0.0, prob_intensity=0.0).set_random_state(0)(img)
    assert torch.equal(torch.as_tensor(still), img)
    moved = RandMammoAugment(prob_flip=0.0, prob_affine=1.0, rotate_deg=25, prob_intensity=0.0).set_random_state(0)(img)
    assert moved.shape == img.shape and not torch.allclose(torch.as_tensor(moved), img)


def test_train_pipeline_from_dicom_is_seeded(dicom_file):
    path, *_ = dicom_file(side="R")
    pipeline = train_transforms(size=(64, 48))
    pipeline.set_random_state(3)
    a = pipeline({"image": str(path)})["image"]
    pipeline.set_random_state(3)
    b = pipeline({"image": str(path)})["image"]
    assert a.shape == (1, 64, 48) and torch.equal(a, b)


def test_container_mode_scales_our_own_cache_by_the_full_16_bit_range():
    """A dark cached PNG (max 30000 of 65535) must keep its values: the bit-depth guess would double them."""
    img = as_metatensor(
        np.array([[[0, 15000, 30000]]], np.float32),
        {"intensity_range": [0.0, 32767.0], "container_range": [0.0, 65535.0]},
    )
    np.testing.assert_allclose(
        ScaleMammogram("container")(img)[0, 0].numpy(), [0, 15000 / 65535, 30000 / 65535], rtol=1e-6
    )
    np.testing.assert_allclose(
        ScaleMammogram("bit_depth")(img)[0, 0].numpy(), [0, 15000 / 32767, 30000 / 32767], rtol=1e-6
    )


def test_dictionary_augment_takes_mammo_augmentations_settings():
    """:class:`RandMammoAugmentd` builds :func:`mammo_augmentation`'s steps from the same settings; a misspelt
    setting is refused rather than ignored."""
    import math

    import pytest

    from mammo_monai.transforms.augment import mammo_augmentation

    settings = {"prob_flip": 0.25, "rotate_deg": 10.0, "zoom": (0.9, 1.3), "shear_deg": 5.0, "intensity_shift": 0.1}
    steps = RandMammoAugmentd("image", mask_keys=["mask"], **settings).pipeline.transforms
    listed = mammo_augmentation("image", ["mask"], **settings)
    assert [type(t) for t in steps] == [type(t) for t in listed]
    grid = steps[2].rand_affine.rand_affine_grid
    assert steps[0].prob == steps[1].prob == 0.25
    assert math.isclose(grid.rotate_range[0], math.radians(10.0))
    assert np.allclose(np.ravel(grid.scale_range), np.ravel(listed[2].rand_affine.rand_affine_grid.scale_range))
    assert steps[2].keys == ("image", "mask") and tuple(steps[3].shifter.offsets) == (-0.1, 0.1)
    with pytest.raises(TypeError):
        RandMammoAugmentd("image", rotate_degrees=10.0)
