"""S and S10 patch sets (Shen et al.) cut from the cached 1152 x 896 images.

Classes: 0 background, 1 calcification malignant, 2 calcification benign, 3 mass malignant,
4 mass benign.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from mammo_monai.data.cache_record import CACHE_RECORD, read_record
from mammo_monai.data.manifest import read_manifest
from mammo_monai.io.atomic import write_csv, write_json
from mammo_monai.io.raster import atomic_write_png
from mammo_monai.parallel import run_parallel

CLASSES = ["background", "calc_malignant", "calc_benign", "mass_malignant", "mass_benign"]
CLASS_INDEX = {("calc", "malignant"): 1, ("calc", "benign"): 2, ("mass", "malignant"): 3, ("mass", "benign"): 4}


class Overlap:
    """Pixel counts of a mask inside any square window, in O(1) per query (summed-area table)."""

    def __init__(self, mask: np.ndarray):
        self.table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        self.shape = mask.shape
        self.total = int(self.table[-1, -1])

    def count(self, row: int, col: int, size: int) -> int:
        """Mask pixels in the ``size`` x ``size`` window centred at (row, col), clipped to the image."""
        r0, c0 = max(0, row - size // 2), max(0, col - size // 2)
        r1, c1 = min(self.shape[0], row - size // 2 + size), min(self.shape[1], col - size // 2 + size)
        if r1 <= r0 or c1 <= c0:
            return 0
        t = self.table
        return int(t[r1, c1] - t[r0, c1] - t[r1, c0] + t[r0, c0])


def cut_patch(image: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    """The ``size`` x ``size`` patch centred at (row, col); zero outside the image."""
    out = np.zeros((size, size), image.dtype)
    r0, c0 = row - size // 2, col - size // 2
    sr0, sc0 = max(0, r0), max(0, c0)
    sr1, sc1 = min(image.shape[0], r0 + size), min(image.shape[1], c0 + size)
    if sr1 > sr0 and sc1 > sc0:
        out[sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = image[sr0:sr1, sc0:sc1]
    return out


def sample_roi_centres(
    roi: np.ndarray,
    n: int,
    size: int,
    rng: np.random.Generator,
    cutoff: float = 0.9,
    step: float = 0.05,
    patience: int = 1000,
) -> list[tuple[int, int]]:
    """Shen et al.'s S10 draw: centres uniform in the ROI's bounding box, accepted when
    intersection / ROI area > c OR intersection / patch area > c; c starts at ``cutoff`` and drops by
    ``step`` after every ``patience`` rejected draws."""
    rows, cols = np.nonzero(roi)
    overlap = Overlap(roi)
    area, patch_area = overlap.total, size * size
    centres, failures, c = [], 0, cutoff
    while len(centres) < n:
        r, q = int(rng.integers(rows.min(), rows.max() + 1)), int(rng.integers(cols.min(), cols.max() + 1))
        inter = overlap.count(r, q, size)
        if inter / area > c or inter / patch_area > c:
            centres.append((r, q))
        else:
            failures += 1
            if failures % patience == 0:
                c -= step
    return centres


def sample_background_centres(
    breast: np.ndarray,
    rois: Overlap | None,
    n: int,
    size: int,
    rng: np.random.Generator,
    max_draws: int = 10000,
    min_breast: float = 0.75,
) -> list[tuple[int, int]]:
    """Centres of background patches: mostly inside the breast and clear of every ROI.

    A patch is accepted when at least ``min_breast`` of its area lies on the breast mask (a centre on
    the skin line would give a patch that is half air) and it overlaps no ROI; fewer than ``n`` when
    ``max_draws`` draws cannot find them (a small breast: the caller reports it).
    """
    candidates = np.argwhere(breast)
    inside = Overlap(breast)
    need = min_breast * min(size * size, inside.total)  # a breast smaller than one patch: all of it
    centres: list[tuple[int, int]] = []
    for _ in range(max_draws):
        if len(centres) == n or len(candidates) == 0:
            break
        r, q = (int(v) for v in candidates[rng.integers(len(candidates))])
        if inside.count(r, q, size) >= need and (rois is None or rois.count(r, q, size) == 0):
            centres.append((r, q))
    return centres


def _read_png(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _read_cached(image: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | dict[str, str]:
    """(pixels, breast mask) of a cached image, or the problem row when either PNG is gone or unreadable."""
    gone = [k for k in ("image", "breast_mask") if not os.path.isfile(str(image[k]))]
    if gone:  # the manifest is read without its file check: one lost PNG costs one image, not the run
        return {
            "file": image["image"],
            "reason": f"cannot read cached image or mask: {' and '.join(gone)} not found "
            f"({image[gone[0]]}); re-run `mammo-monai prepare`",
        }
    try:
        return _read_png(image["image"]), _read_png(image["breast_mask"]) > 0
    except Exception as err:
        return {"file": image["image"], "reason": f"cannot read cached image or mask: {err}"}


def _lesion_draws(
    image: dict[str, Any],
    lesions: list[dict[str, Any]],
    shape: tuple[int, ...],
    scheme: str,
    size: int,
    per_roi: int,
    rng: np.random.Generator,
    problems: list[dict],
) -> tuple[list[tuple[int, tuple[int, int], str]], np.ndarray]:
    """The lesion patches' (label, centre, tag) and the union of the usable ROI masks; a lesion without
    geometry, with a bad mask or off the breast is reported in ``problems`` and cut no patch."""
    union = np.zeros(shape, bool)
    draws = []
    for k, lesion in enumerate(lesions):
        path = str(lesion.get("cached_mask") or "")
        if not path or path == "nan":
            problems.append({"file": image["image"], "reason": f"lesion {k} has no geometry; no patch cut"})
            continue
        roi = _read_png(path) > 0
        if roi.shape != shape or not roi.any():
            reason = (
                "empty ROI mask after preprocessing"
                if roi.shape == shape
                else "ROI mask size differs from the cached image"
            )
            problems.append({"file": path, "reason": reason})
            continue
        union |= roi  # background patches stay clear of it in any case
        if str(lesion.get("outside_breast", "")).lower() in ("true", "1"):
            problems.append({"file": path, "reason": f"lesion {k} lies outside the breast mask; no lesion patch cut"})
            continue
        label = CLASS_INDEX[(lesion["lesion_type"], lesion["pathology"])]
        if scheme == "s":
            rr, cc = np.nonzero(roi)
            centres = [(int(round((rr.min() + rr.max()) / 2)), int(round((cc.min() + cc.max()) / 2)))]
        else:
            centres = sample_roi_centres(roi, per_roi, size, rng)
        draws += [(label, c, f"roi{k}") for c in centres]
    return draws, union


def _write_patches(
    image: dict[str, Any], pixels: np.ndarray, draws: list[tuple[int, tuple[int, int], str]], size: int, out: Path
) -> list[dict]:
    """Cut and write each drawn patch under ``out/<split>/<class>/``; the rows of ``patches.csv``."""
    rows = []
    for j, (label, (r, c), tag) in enumerate(draws):
        path = out / image["split"] / CLASSES[label] / f"{image['image_id']}_{tag}_{j:03d}.png"
        atomic_write_png(path, cut_patch(pixels, r, c, size))
        rows.append(
            {
                "path": str(path),
                "label": label,
                "patient_id": image["patient_id"],
                "split": image["split"],
                "source_image": image["image"],
                "image_id": image["image_id"],
                "center_row": r,
                "center_col": c,
            }
        )
    return rows


def patches_for_image(
    image: dict[str, Any],
    lesions: list[dict[str, Any]],
    index: int,
    out_dir: str,
    scheme: str,
    size: int,
    per_roi: int,
    background: int,
    seed: int,
) -> tuple[list[dict], list[dict]]:
    """All patches of one image: (patch rows, problems)."""
    rng = np.random.default_rng([seed, index])
    read = _read_cached(image)
    if isinstance(read, dict):
        return [], [read]
    pixels, breast = read
    problems: list[dict] = []
    draws, union = _lesion_draws(image, lesions, pixels.shape, scheme, size, per_roi, rng, problems)
    n_bg = 1 if scheme == "s" else background
    bg = sample_background_centres(breast, Overlap(union) if union.any() else None, n_bg, size, rng)
    if len(bg) < n_bg:
        problems.append(
            {
                "file": image["image"],
                "reason": f"only {len(bg)} of {n_bg} background patches fit in the breast clear of ROIs",
            }
        )
    draws += [(0, c, "bg") for c in bg]
    return _write_patches(image, pixels, draws, size, Path(out_dir)), problems


def make_patches(
    manifest_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    scheme: str = "s10",
    size: int = 224,
    per_roi: int = 10,
    background: int = 10,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the S or S10 patch set of a prepared manifest: 16-bit PNGs under
    ``<out>/<split>/<class>/`` plus ``patches.csv`` (path, label, patient_id, split, source_image) and
    ``patch_errors.csv``: one row per problem, a cached PNG that is gone or unreadable included (that
    image is skipped, ``failed_images`` counts it). Deterministic for a given ``seed`` whatever
    ``workers`` is."""
    manifest_dir, out_dir = Path(manifest_dir).resolve(), Path(out_dir).resolve()  # absolute paths in patches.csv
    scheme = scheme.lower()
    if scheme not in ("s", "s10"):
        raise ValueError(f"scheme must be 's' or 's10', got {scheme!r}")
    images, lesions = read_manifest(manifest_dir, check_files=False)  # a missing PNG is one image's error row
    if "breast_mask" not in images:
        raise ValueError(f"{manifest_dir}: images.csv has no breast_mask column; run `mammo-monai prepare` first")
    by_image = {k: g.to_dict("records") for k, g in lesions.groupby("image_id")} if not lesions.empty else {}
    jobs = [
        (row, by_image.get(row["image_id"], []), i, str(out_dir), scheme, size, per_roi, background, seed)
        for i, row in enumerate(images.to_dict("records"))
    ]
    t0 = time.time()
    results = run_parallel(
        patches_for_image,
        jobs,
        workers,
        f"patches {scheme.upper()}",
        progress,
        on_error=lambda job, err: ([], [{"file": job[0]["image"], "reason": f"failed: {type(err).__name__}: {err}"}]),
    )
    seconds = time.time() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([r for res in results for r in res[0]])
    write_csv(table, out / "patches.csv")
    record = read_record(manifest_dir) or {}
    write_json(
        {**record, "patch_size": size, "scheme": scheme, "per_roi": per_roi, "background": background, "seed": seed},
        out / CACHE_RECORD,
    )  # the preprocessing the patches went through, for the model trained on them
    write_csv(
        pd.DataFrame([p for res in results for p in res[1]], columns=["file", "reason"]), out / "patch_errors.csv"
    )
    failed = sum(1 for res in results for p in res[1] if p["reason"].startswith(("failed:", "cannot read")))
    return {
        "scheme": scheme,
        "patches": len(table),
        "failed_images": failed,
        "per_class": table["label"].value_counts().sort_index().to_dict() if len(table) else {},
        "patches_per_second": round(len(table) / max(seconds, 1e-9), 1),
        "seconds": round(seconds, 1),
    }
