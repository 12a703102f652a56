"""The patch-classifier heatmap against a hand computation: MONAI's sliding window centred on the
pixel grid, zero padding, the breast mask and the bilinear enlargement of the coarse map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mammo_monai.inference.heatmaps import sliding_window_probabilities


class SumOfWindow(torch.nn.Module):
    """A two-class 'classifier': logits [0, sum of the window], so class 1 is sigmoid(sum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.sum(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(total), total], dim=1)


def _hand_coarse(image: np.ndarray, breast: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """Class probabilities at the window centres (0, stride, ...), by loops: a window centred on
    (r, c) covers rows r - patch // 2 .. r - patch // 2 + patch - 1 (zeros outside the image)."""
    h, w = image.shape
    half = patch // 2
    rows, cols = range(0, h, stride), range(0, w, stride)
    out = np.zeros((2, len(rows), len(cols)))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if not breast[r, c]:
                out[:, i, j] = (1.0, 0.0)
                continue
            total = sum(
                image[y, x]
                for y in range(r - half, r - half + patch)
                for x in range(c - half, c - half + patch)
                if 0 <= y < h and 0 <= x < w
            )
            p1 = 1.0 / (1.0 + np.exp(-total))
            out[:, i, j] = (1.0 - p1, p1)
    return out


@pytest.mark.parametrize(("patch", "stride", "batch_size"), [(3, 1, 64), (4, 2, 3), (5, 5, 2)])
def test_heatmap_is_the_hand_computed_window_grid(patch, stride, batch_size):
    rng = np.random.default_rng(patch)
    image = rng.normal(size=(7, 6)).astype(np.float32)
    breast = np.ones((7, 6), bool)
    breast[:, 4:] = False  # the right of the film is background
    got = sliding_window_probabilities(
        SumOfWindow(), torch.from_numpy(image)[None], torch.from_numpy(breast)[None], patch, stride, batch_size
    )
    coarse = torch.from_numpy(_hand_coarse(image, breast, patch, stride)).float()
    expected = F.interpolate(coarse[None], size=image.shape, mode="bilinear", align_corners=False)[0]
    assert got.shape == (2, 7, 6)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    if stride == 1:  # no enlargement: each pixel is its own window's probability
        torch.testing.assert_close(got, coarse, rtol=1e-5, atol=1e-6)


def test_heatmap_refuses_an_empty_breast_and_a_stride_over_the_patch():
    image = torch.rand(1, 6, 6)
    with pytest.raises(ValueError, match="no window centre lies inside the breast"):
        sliding_window_probabilities(SumOfWindow(), image, torch.zeros(1, 6, 6), 3, 1)
    with pytest.raises(ValueError, match="stride 4 must be between 1 and the patch size 3"):
        sliding_window_probabilities(SumOfWindow(), image, None, 3, 4)
    assert sliding_window_probabilities(SumOfWindow(), image, None, 3, 3).shape == (2, 6, 6)
