"""Self-supervised inputs: a corrupted copy to restore, the original as the target; fixed for validation."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mammo_monai.transforms.ssl import segmentation_transforms, ssl_transforms


def _png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def test_corruption_is_random_in_training_and_fixed_for_validation(tmp_path):
    rng = np.random.default_rng(0)
    image = _png(tmp_path / "a.png", (rng.random((64, 48)) * 60000 + 1000).astype(np.uint16))
    item = {"image": image, "label": 1, "masks": ["x.png"]}
    val = ssl_transforms((64, 48), validation=True)
    a, b = val(dict(item)), val(dict(item))
    assert "masks" not in a and a["label"].shape == a["image"].shape  # the target is the image, not its label
    assert torch.equal(a["image"], b["image"]) and not torch.equal(a["image"], a["label"])
    assert float(a["label"].max()) <= 1.0 and (a["image"] == 0).any()  # dropped blocks are zero
    train = ssl_transforms((64, 48))
    assert not torch.equal(train(dict(item))["image"], train(dict(item))["image"])


def test_segmentation_target_is_the_union_of_the_masks_and_moves_with_the_image(tmp_path):
    image = _png(tmp_path / "a.png", np.full((64, 48), 30000, np.uint16))
    m1, m2 = np.zeros((64, 48), np.uint8), np.zeros((64, 48), np.uint8)
    m1[5:10, 5:10], m2[40:50, 30:40] = 255, 255
    item = {"image": image, "label": 1, "masks": [_png(tmp_path / "m1.png", m1), _png(tmp_path / "m2.png", m2)]}
    out = segmentation_transforms(train=False)(dict(item))
    assert out["label"].shape == (1, 64, 48) and int(out["label"].sum()) == 25 + 100 and "masks" not in out
    trained = segmentation_transforms(train=True, augment={"prob_affine": 0.0, "prob_intensity": 0.0, "prob_flip": 1.0})
    flipped = trained(dict(item))["label"][0]
    assert int(flipped.sum()) == 125 and not torch.equal(flipped, out["label"][0])
