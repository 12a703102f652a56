from __future__ import annotations

import numpy as np
import pytest

from mammo_monai.synthetic.phantom import Lesion, draw_lesion


def _specks(kind: str, malignant: bool, scale: float) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((576, 448), np.float32)
    lesion = Lesion(kind, malignant, (288.0, 224.0), size=12.0 * scale, contrast=0.2, seed=7, scale=scale)
    mask = draw_lesion(img, lesion)
    return img, mask


@pytest.mark.parametrize("kind", ["mass", "calcification"])
def test_lesion_scale_enlarges_the_lesion_and_its_fine_structure(kind):
    """The demo's 576-row films carry lesions at the pixel sizes of 1152 rows (scale 2): twice as wide,
    about four times the area, and for calcifications specks that are not sub-pixel."""
    small, small_mask = _specks(kind, True, 1.0)
    large, large_mask = _specks(kind, True, 2.0)
    assert 2.5 < large_mask.sum() / small_mask.sum() < 6
    assert (large > 0.05).sum() > 2.5 * (small > 0.05).sum()


def test_calcification_specks_at_scale_two_reach_full_contrast():
    """At half of 1152 rows the fine malignant specks (radius 0.3-0.7 px) never reach their contrast;
    with scale 2 (radius 0.6-1.4 px) they do, which is what lets a patch network see them."""
    small, _ = _specks("calcification", True, 1.0)
    large, _ = _specks("calcification", True, 2.0)
    assert large.max() > 0.9 * 0.2 and (large > 0.1).sum() > 2 * (small > 0.1).sum()
