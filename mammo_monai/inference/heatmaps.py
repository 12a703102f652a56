"""Patch-classifier heatmaps: a sliding window over the breast, saved as NIfTI and a colour overlay."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F


@torch.inference_mode()
def sliding_window_probabilities(
    network: torch.nn.Module,
    image: torch.Tensor,
    breast: torch.Tensor | None,
    patch: int,
    stride: int,
    batch_size: int = 64,
) -> torch.Tensor:
    """Class probabilities (C, H, W) of the patch classifier for windows centred every ``stride`` px.

    The image (1, H, W) is zero-padded by half a patch so that windows are centred on the pixel grid;
    windows whose centre is outside the breast are not run and count as background (class 0). The
    coarse map is enlarged to (H, W) bilinearly.
    """
    _, h, w = image.shape
    half = patch // 2
    padded = F.pad(image[None], (half, patch - half, half, patch - half))
    rows, cols = torch.arange(0, h, stride), torch.arange(0, w, stride)
    centres = torch.cartesian_prod(rows, cols)
    keep = (
        breast[0][centres[:, 0], centres[:, 1]] > 0
        if breast is not None
        else torch.ones(len(centres), dtype=torch.bool)
    )
    n_classes = None
    probs = None
    idx = torch.nonzero(keep).flatten()
    for start in range(0, len(idx), batch_size):
        chunk = centres[idx[start : start + batch_size]]
        windows = torch.stack([padded[0, :, r : r + patch, c : c + patch] for r, c in chunk.tolist()])
        p = torch.softmax(network(windows.contiguous(memory_format=torch.channels_last)).float(), 1)
        if probs is None:
            n_classes = p.shape[1]
            probs = torch.zeros(len(centres), n_classes)
            probs[:, 0] = 1.0
        probs[idx[start : start + batch_size]] = p
    if probs is None:  # no window inside the breast
        raise ValueError("no window centre lies inside the breast mask")
    coarse = probs.T.reshape(n_classes, len(rows), len(cols))
    return F.interpolate(coarse[None], size=(h, w), mode="bilinear", align_corners=False)[0]


def nifti_affine(pixel_spacing: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """Affine of a (rows, columns) image stored as NIfTI axes (i = row, j = column): spacing on the
    diagonal; the same affine for the image and its heatmaps keeps them aligned in ITK-SNAP/Slicer."""
    rs, cs = (float(s) if s == s and s > 0 else 1.0 for s in pixel_spacing)
    return np.diag([rs, cs, 1.0, 1.0])


def save_heatmaps(
    out_dir: str | os.PathLike,
    name: str,
    image: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    pixel_spacing: Sequence[float] = (1.0, 1.0),
) -> dict[str, str]:
    """Write ``<name>_image.nii.gz`` (H, W, 1), ``<name>_heatmap.nii.gz`` (H, W, 1, C) with one affine,
    and ``<name>_heatmap.png``: the image with each lesion class's probability as a colour overlay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    affine = nifti_affine(pixel_spacing)
    paths = {
        "image_nifti": str(out / f"{name}_image.nii.gz"),
        "heatmap_nifti": str(out / f"{name}_heatmap.nii.gz"),
        "overlay_png": str(out / f"{name}_heatmap.png"),
    }
    nib.save(nib.Nifti1Image(image.astype(np.float32)[:, :, None], affine), paths["image_nifti"])
    nib.save(
        nib.Nifti1Image(np.moveaxis(probs.astype(np.float32), 0, -1)[:, :, None, :], affine), paths["heatmap_nifti"]
    )
    shown = list(range(1, probs.shape[0]))
    fig, axes = plt.subplots(
        1, len(shown), figsize=(3 * len(shown), 3 * image.shape[0] / image.shape[1]), dpi=100, squeeze=False
    )
    for ax, c in zip(axes[0], shown):
        ax.imshow(image, cmap="gray")
        ax.imshow(probs[c], cmap="jet", alpha=0.4 * (probs[c] > 0.1) + 0.0, vmin=0, vmax=1)
        ax.set_title(class_names[c], fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(paths["overlay_png"])
    plt.close(fig)
    return paths
