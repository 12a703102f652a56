"""Patch-classifier heatmaps: MONAI's sliding window over the breast, its windows run in batches on the
classifier's inference backend (ONNX Runtime / OpenVINO / eager), saved as NIfTI and a colour overlay."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import SlidingWindowSplitter

from mammo_monai.inference.backend_choice import recorded_choice, runtime_network
from mammo_monai.io.atomic import atomic_path
from mammo_monai.networks.weights import bf16_supported

if TYPE_CHECKING:
    from mammo_monai.inference.opened_bundle import OpenedBundle

#: windows per forward pass of the patch classifier (a 1152 x 896 image has up to 336 at 224 px, stride 56)
HEATMAP_BATCH = 64


def heatmap_auto_backend() -> str:
    """What "auto" runs for a patch bundle that records no backend choice: eager PyTorch with bf16 autocast
    where the CPU has native bf16 (the former path, 7e-4 of fp32 in ``scripts/bench_heatmaps.py``), else
    OpenVINO in float32 (1.7x eager fp32 there). Not OpenVINO bf16: with it in the process the bundle
    tests died of a SIGSEGV the kernel sent while delivering a signal (``si_code`` SI_KERNEL, no faulting
    thread, no faulthandler output) in a later test's DataLoader shutdown; "openvino" by name still runs it."""
    return "eager" if bf16_supported() else "openvino"


def heatmap_network(
    bundle: OpenedBundle, backend: str, patch: int, workdir: str | os.PathLike
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The patch classifier of ``bundle`` as the heatmaps run it: on ``backend`` as ``predict`` runs the
    whole-image classifier (:func:`~mammo_monai.inference.backend_choice.runtime_network`; its ONNX file is
    exported once per weights at ``patch`` x ``patch`` with a dynamic batch axis), eager PyTorch with a warning
    when that runtime is missing or the export fails. "auto" is the backend recorded for the patch bundle,
    else :func:`heatmap_auto_backend`; "eager" is the former path (bf16 autocast where the CPU has it)."""
    if backend == "auto" and recorded_choice(bundle)[0] is None:
        backend = heatmap_auto_backend()
    example = torch.rand(1, 1, patch, patch)
    return runtime_network(bundle.networks(bf16=False)[0], backend, example, bundle, workdir)


@torch.inference_mode()
def sliding_window_probabilities(
    network: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    breast: torch.Tensor | None,
    patch: int,
    stride: int | None = None,
    batch_size: int = HEATMAP_BATCH,
) -> torch.Tensor:
    """Class probabilities (C, H, W) of the patch classifier for windows centred every ``stride`` px
    (None or 0: a quarter of the patch, at least 1).

    The image (1, H, W) is zero-padded by half a patch so that the window of MONAI's
    ``SlidingWindowSplitter`` at padded location (r, c) is centred on pixel (r, c); windows whose
    centre is outside the breast are not run and count as background (class 0). The coarse map of
    window centres is enlarged to (H, W) bilinearly. (MONAI's ``PatchInferer`` does not fit: it
    places each output by its size relative to the window, and a classifier's (C,) output has none.)
    ``network`` is any callable from (N, 1, patch, patch) to logits (N, C): a torch module or the ONNX
    Runtime / OpenVINO stand-in of :func:`heatmap_network`; the windows go to it ``batch_size`` at a time.

    Raises:
        ValueError: ``stride`` is not between 1 and ``patch``, or no window centre lies in the breast.
    """
    stride = stride or max(1, patch // 4)
    if not 1 <= stride <= patch:
        raise ValueError(f"heatmap stride {stride} must be between 1 and the patch size {patch}")
    _, h, w = image.shape
    half = patch // 2
    # the last window starts (centre) at most at h - 1: MONAI's splitter stops at the padded size - patch
    padded = F.pad(image[None], (half, patch - half - 1, half, patch - half - 1))
    inside = None if breast is None else (lambda _window, at: bool(breast[0, at[0], at[1]] > 0))
    splitter = SlidingWindowSplitter(patch, overlap=patch - stride, filter_fn=inside, pad_mode=None)
    found = list(splitter(padded))  # (window view, centre) pairs
    if not found:
        raise ValueError("no window centre lies inside the breast mask")
    probs = torch.cat(
        [
            torch.softmax(
                network(torch.cat([win for win, _ in chunk]).contiguous(memory_format=torch.channels_last)).float(), 1
            )
            for chunk in (found[i : i + batch_size] for i in range(0, len(found), batch_size))
        ]
    )
    coarse = torch.zeros(probs.shape[1], len(range(0, h, stride)), len(range(0, w, stride)))
    coarse[0] = 1.0
    rows, cols = (torch.tensor([at for _, at in found]) // stride).T
    coarse[:, rows, cols] = probs.T
    return F.interpolate(coarse[None], size=(h, w), mode="bilinear", align_corners=False)[0]


def nifti_affine(pixel_spacing: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """Affine of a (rows, columns) image stored as NIfTI axes (i = row, j = column): spacing on the
    diagonal; the same affine for the image and its heatmaps keeps them aligned in ITK-SNAP/Slicer."""
    rs, cs = (float(s) if s == s and s > 0 else 1.0 for s in pixel_spacing)
    return np.diag([rs, cs, 1.0, 1.0])


def probability_nifti(probs: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """Probabilities in [0, 1] as a NIfTI of 8-bit steps: stored uint8 with ``scl_slope`` 1/255, which every
    NIfTI reader applies (nibabel's ``get_fdata``), so values come back within 1/510 (a DICOM SEG's
    FRACTIONAL precision). At an original mammogram's ~4600 x 2800 pixels float32 maps take ~6x longer to
    gzip and ~10x the disk."""
    q = np.round(np.clip(np.asarray(probs, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    img = nib.Nifti1Image(q, affine)
    img.header.set_slope_inter(1.0 / 255, 0.0)
    return img


def _image_nifti(image: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """The image as NIfTI (H, W, 1): uint16 when its values are whole numbers in range (exact, and far quicker
    to gzip at full size), float32 otherwise."""
    arr = np.asarray(image, dtype=np.float32)
    whole = arr.size and arr.min() >= 0 and arr.max() <= 65535 and np.array_equal(arr, np.round(arr))
    return nib.Nifti1Image((arr.astype(np.uint16) if whole else arr)[:, :, None], affine)


def _for_display(a: np.ndarray, longest: int) -> np.ndarray:
    """(..., H, W) area-averaged so that its longer side is at most ``longest`` (a view when it already is)."""
    h, w = a.shape[-2:]
    if max(h, w) <= longest:
        return a
    f = longest / max(h, w)
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).reshape(1, -1, h, w)
    small = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="area")
    return small.reshape(*a.shape[:-2], *small.shape[-2:]).numpy()


def save_nifti(image: nib.Nifti1Image, path: str | os.PathLike) -> None:
    """``nib.save`` under a temporary ``.nii.gz`` name beside ``path``, renamed onto it when complete: a kill
    during the (slow, full-size) gzip never leaves a truncated file under the final name."""
    with atomic_path(path) as tmp:
        partial = Path(tmp).with_name(Path(tmp).name + ".nii.gz")  # nibabel picks gzip by the suffix
        try:
            nib.save(image, str(partial))
            partial.replace(tmp)
        finally:
            partial.unlink(missing_ok=True)


def save_heatmaps(
    out_dir: str | os.PathLike,
    name: str,
    image: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    pixel_spacing: Sequence[float] = (1.0, 1.0),
    display: int = 1024,
) -> dict[str, str]:
    """Write ``<name>_image.nii.gz`` (H, W, 1), ``<name>_heatmap.nii.gz`` (H, W, 1, C; 8-bit steps, see
    :func:`probability_nifti`) with one affine (``pixel_spacing`` mm per row and column), and ``<name>_heatmap.png``: the image with each lesion
    class's probability as a colour overlay, shrunk so its longer side is at most ``display`` pixels.
    ``predict`` passes the original image and maps on its grid
    (:func:`~mammo_monai.inference.original_grid.save_on_original_grid`)."""
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
    save_nifti(_image_nifti(image, affine), paths["image_nifti"])
    save_nifti(probability_nifti(np.moveaxis(probs, 0, -1)[:, :, None, :], affine), paths["heatmap_nifti"])
    image, probs = _for_display(image, display), _for_display(probs, display)
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
    with atomic_path(paths["overlay_png"]) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return paths
