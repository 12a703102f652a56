"""Breast masking on digitised film: borders, garbage rows, labels, rulers and strips that touch the breast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from mammo_monai.io import MammogramError, as_metatensor
from mammo_monai.synthetic.film import add_edge_strip, add_frame, add_garbage_rows, add_label, add_ruler
from mammo_monai.synthetic.phantom import breast_tissue
from mammo_monai.transforms.mask import BreastMask, film_border_bands
from mammo_monai.transforms.pipelines import preprocess_transforms

SHAPE = (480, 360)


def _film(kind: str, view: str, side: str = "L", seed: int = 0, shape=SHAPE):
    """A breast with one kind of film artefact touching it; returns (image, visible breast, not breast)."""
    rng = np.random.default_rng(seed)
    img, region, _ = breast_tissue(rng, shape, view, density=2)
    if side == "R":
        img, region = img[:, ::-1].copy(), region[:, ::-1].copy()
    if kind == "frame":
        junk = add_frame(img, region, rng, thickness=5)
    elif kind == "garbage_rows":
        junk = add_garbage_rows(img, region, rng, sides=("top", "bottom"), count=2)
    elif kind == "label":  # a label stuck against the frame, the frame against the chest wall
        junk = add_frame(img, region, rng, thickness=4)
        label = add_label(img, region, rng, chest_wall_left=side == "L", frame=4)
        assert label.sum() > 500
        junk |= label
    elif kind == "ruler":
        junk = add_ruler(img, region, rng, side="top", offset=0)
    else:
        junk = add_edge_strip(img, region, rng, side="top", depth=25)
    return img, region & ~junk, junk


def _score(mask: torch.Tensor, breast: np.ndarray, junk: np.ndarray) -> tuple[int, float]:
    """(non-breast pixels kept farther than 3 px from the breast, fraction of the breast kept)."""
    m = torch.as_tensor(mask)[0].numpy().astype(bool)
    near = ndimage.binary_dilation(breast, iterations=3)
    return int((m & junk & ~near).sum()), float((m & breast).sum() / breast.sum())


CASES = [
    ("frame", "CC", "L"),
    ("frame", "MLO", "R"),
    ("garbage_rows", "MLO", "L"),
    ("label", "CC", "L"),
    ("label", "MLO", "R"),
    ("ruler", "MLO", "L"),
    ("edge_strip", "MLO", "R"),
]


@pytest.mark.parametrize("kind, view, side", CASES)
def test_film_artefact_touching_the_breast_is_masked_out_and_the_breast_kept(kind, view, side):
    img, breast, junk = _film(kind, view, side)
    mask = BreastMask()(torch.from_numpy(img[None]))
    leftover, kept = _score(mask, breast, junk)
    assert leftover <= 40, f"{leftover} px of {kind} kept"  # ~0: a few px where the breast meets the border
    assert kept >= 0.99


def test_chest_wall_and_pectoral_reaching_a_garbage_row_stay_whole():
    img, breast, junk = _film("garbage_rows", "MLO", "L")
    mask = BreastMask()(torch.from_numpy(img[None]))[0].numpy()
    top = breast[:8].any(0)  # the pectoral muscle reaches the top edge under the garbage rows
    assert top.sum() > 50 and mask[0][top].mean() > 0.95 and mask[:, 0][breast[:, 0]].mean() > 0.99


def test_border_band_found_beside_a_chest_wall_that_spans_most_of_the_film():
    tissue = np.zeros((200, 150), bool)
    tissue[15:190, :60] = True  # chest wall along 87 % of the left edge
    tissue[:, :3] = True  # film border: a full bright line
    tissue[:2, :] = True  # garbage first rows
    assert film_border_bands(tissue) == {"left": 3, "top": 2}
    tissue[:, :3] = tissue[:, 3:6]  # no border: the chest wall alone is not one
    assert "left" not in film_border_bands(tissue)


def test_image_that_is_only_film_border_raises_naming_the_file():
    img = np.zeros((1, 120, 90), np.float32)
    img[0, :4], img[0, -4:], img[0, :, :4], img[0, :, -4:] = 1.0, 1.0, 1.0, 1.0
    with pytest.raises(MammogramError, match="/data/blank.dcm: breast mask is empty"):
        BreastMask()(as_metatensor(img, {"source_path": "/data/blank.dcm"}))


def test_windowed_background_above_zero_is_not_tissue():
    img, breast, _ = _film("ruler", "CC", "L")  # a ruler far from a CC breast: only the background matters
    raised = 0.06 + 0.9 * img  # a VOI window puts the background at ~6 % of the maximum
    m = BreastMask()(torch.from_numpy(raised[None]))[0].numpy()
    assert m.mean() < 0.7 and (m & breast).sum() / breast.sum() > 0.99


def test_default_pipeline_masks_the_full_image_before_resizing():
    img, breast, junk = _film("label", "CC", "L", shape=(960, 720))
    d = preprocess_transforms(size=(240, 180), load=False)({"image": as_metatensor(img[None] * 60000)})
    mask, out = d["mask"][0].numpy() > 0.5, d["image"][0].numpy()
    small = lambda a: ndimage.zoom(a.astype(float), 0.25, order=1) > 0.5  # noqa: E731
    leftover = mask & small(junk) & ~ndimage.binary_dilation(small(breast), iterations=2)
    assert mask.shape == out.shape == (240, 180) and leftover.sum() <= 10
    assert out[~mask].max() == 0 and (mask & small(breast)).sum() / small(breast).sum() > 0.98
    assert 0.2 < d["image"].meta["mask_fraction"] < 0.8
