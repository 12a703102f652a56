"""The hard digitised-film cases (mini-MIAS): inset film edges, labels against the skin, a breast filling the film."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mammo_monai.synthetic.film import add_broad_label, add_hard_film_artefacts, add_inset_strip, add_top_strip
from mammo_monai.synthetic.phantom import breast_tissue, full_width_breast

SHAPE = (512, 512)


def _breast(seed: int = 0, side: str = "L"):
    img, region, _ = breast_tissue(np.random.default_rng(seed), SHAPE, "MLO", density=2)
    return (img, region) if side == "L" else (img[:, ::-1].copy(), region[:, ::-1].copy())


def _contact(a: np.ndarray, b: np.ndarray) -> int:
    return int((ndimage.binary_dilation(a) & b).sum())


@pytest.mark.parametrize("side", ["L", "R"])
def test_inset_strip_runs_the_height_beside_the_skin_with_black_padding_outside(side):
    img, region = _breast(1, side)
    out = add_inset_strip(img, region, np.random.default_rng(0), chest_wall_left=side == "L")
    strip = img > 0.8
    cols = np.flatnonzero(strip.all(0))
    assert 4 <= len(cols) <= 0.03 * SHAPE[1] and 0 < cols[0] and cols[-1] < SHAPE[1] - 1  # clear of the edge
    outside = slice(cols[-1] + 1, None) if side == "L" else slice(0, cols[0])
    assert img[:, outside].max() < 0.1 and out[:, outside].all()  # black padding beyond it
    assert _contact(strip, region & ~out) > 0.1 * SHAPE[0]  # touches the skin along a long stretch


def test_top_strip_spans_the_width_over_the_axilla_inset_by_padding():
    img, region = _breast(2)
    out = add_top_strip(img, region, np.random.default_rng(1), side="top")
    rows = np.flatnonzero((img > 0.8).all(1))
    assert rows[0] > 0 and img[: rows[0]].max() < 0.1 and out[: rows[-1] + 1].all()
    assert _contact(img > 0.8, region & ~out) > 0.05 * SHAPE[1]
    lesion = np.zeros(SHAPE, bool)
    lesion[: rows[-1] + 5] = True  # a lesion up there: the strip moves off it, or is not drawn
    img2, region2 = _breast(2)
    assert not (add_top_strip(img2, region2, np.random.default_rng(1), protect=lesion) & lesion).any()


def test_broad_label_lies_against_the_skin_line_along_its_side():
    img, region = _breast(3)
    label = add_broad_label(img, region, np.random.default_rng(2))
    assert label.sum() > 0.004 * img.size and not (label & region).any()
    rows = np.flatnonzero(label.any(1))
    assert _contact(label, region) >= 0.5 * len(rows)
    with pytest.raises(ValueError, match="unknown hard film artefacts"):
        add_hard_film_artefacts(img, region, np.random.default_rng(0), kinds=["tape"])


def test_full_width_breast_fills_the_film_with_its_pectoral_in_the_chest_wall_corner():
    img, region = full_width_breast(np.random.default_rng(0), SHAPE)
    assert region.all() and img.min() > 0.05  # both side edges cut the breast: no background anywhere
    top, k = SHAPE[0] // 4, SHAPE[1] // 8
    assert img[:top, :k].mean() > img[:top, -k:].mean() + 0.1  # the muscle
    assert img[:, : SHAPE[1] // 2].sum() < img[:, SHAPE[1] // 2 :].sum()  # the dense cone: nipple half brighter
