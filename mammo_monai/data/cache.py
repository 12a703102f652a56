"""The preprocessing cache: each image once as a masked, oriented, resized 16-bit PNG, with its breast
mask and its lesion masks carried through the same transforms."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.draw import disk

from mammo_monai.io.atomic import write_json
from mammo_monai.io.errors import MammogramError, describe_error
from mammo_monai.io.raster import atomic_write_png, to_uint16
from mammo_monai.io.reader import LoadMammogramd, read_mammogram
from mammo_monai.transforms.pipelines import preprocess_transforms


def lesion_mask(lesion: dict[str, Any], shape: tuple[int, int], notes: list[str]) -> np.ndarray | None:
    """Boolean mask of one lesion in the ORIGINAL image's pixels, from its mask file or its circle.

    Fills the lesion's ``center_row``, ``center_col`` and ``radius`` (equivalent-area radius) from
    a mask. Returns None for a lesion without geometry. A mask whose size differs from the image's
    (CBIS-DDSM has some a few pixels off) is resized, and that is noted.

    Raises:
        MammogramError: an empty mask, or a centre outside the image.
    """
    path = str(lesion.get("mask") or "")
    if path and path != "nan":
        arr, _ = read_mammogram(path)
        m = arr[0] > 0
        if m.shape != shape:
            notes.append(f"{path}: ROI mask {m.shape[0]}x{m.shape[1]} differs from the image's {shape[0]}x{shape[1]}; resized to fit")
            t = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None].float(), size=shape, mode="nearest")
            m = t[0, 0].numpy() > 0.5
        if not m.any():
            raise MammogramError(path, "empty ROI mask")
        rows, cols = np.nonzero(m)
        lesion.update(center_row=round(float(rows.mean()), 1), center_col=round(float(cols.mean()), 1),
                      radius=round(float(np.sqrt(m.sum() / np.pi)), 1))
        return m
    r, c, rad = (float(lesion.get(k, "nan") or "nan") for k in ("center_row", "center_col", "radius"))
    if np.isnan(r) or np.isnan(c):
        return None
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise MammogramError(lesion.get("image"), f"lesion centre ({r:g}, {c:g}) lies outside the {shape[0]}x{shape[1]} image")
    m = np.zeros(shape, bool)
    m[disk((r, c), max(rad if not np.isnan(rad) else 3.0, 1.0), shape=shape)] = True
    return m


def cache_image(
    image: dict[str, Any], lesions: list[dict[str, Any]], out_dir: str | os.PathLike, size: Sequence[int] = (1152, 896),
    options: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, str]]]:
    """Cache one image and its lesions; returns (image row, lesion rows, problems).

    The image row points at the cached PNG (``image``), keeps the original as ``source`` and adds
    ``breast_mask``, ``flipped``, ``original_rows``/``original_columns``. Lesion rows gain
    ``cached_mask`` (in the cached image's pixels) and keep their geometry in the original's.
    A finished image (PNG and its ``.json`` record present) is not redone.
    """
    out = Path(out_dir)
    stem = out / "images" / image["image_id"]
    record = stem.with_suffix(".json")
    if record.is_file() and stem.with_suffix(".png").is_file():
        done = json.loads(record.read_text())
        return done["image"], done["lesions"], []
    problems: list[dict[str, str]] = []
    src = image["image"]
    try:
        data = LoadMammogramd("image", laterality_key="_file_laterality")({"image": src, "laterality": image.get("laterality") or ""})
        shape = tuple(data["image"].shape[-2:])
        keys, kept = [], []
        for k, lesion in enumerate(lesions):
            lesion = dict(lesion)
            notes: list[str] = []
            try:
                m = lesion_mask(lesion, shape, notes)
            except MammogramError as err:
                problems.append({"file": err.path, "reason": f"{err.problem}; lesion skipped"})
                continue
            problems += [{"file": n.split(": ", 1)[0], "reason": n.split(": ", 1)[1]} for n in notes]
            if m is not None:
                data[f"lesion{k}"] = torch.from_numpy(m[None]).float()
                keys.append((f"lesion{k}", lesion))
            kept.append(lesion)
        data = preprocess_transforms(size=size, extra_mask_keys=[k for k, _ in keys], load=False, **(options or {}))(data)
    except Exception as err:
        return None, [], [{"file": src, "reason": describe_error(err, src)}]
    out_img = dict(image)
    flipped = bool(data["flipped"])
    out_img.update(image=str(stem.with_suffix(".png")), source=src, breast_mask=f"{stem}_mask.png", flipped=flipped,
                   laterality=image.get("laterality") or ("R" if flipped else "L"),
                   original_rows=shape[0], original_columns=shape[1])
    (out / "lesions").mkdir(parents=True, exist_ok=True)
    for key, lesion in keys:
        path = out / "lesions" / f"{image['image_id']}_{key}.png"
        atomic_write_png(path, (data[key][0].numpy() > 0.5).astype(np.uint8) * 255)
        lesion["cached_mask"] = str(path)
    atomic_write_png(f"{stem}_mask.png", (data["mask"][0].numpy() > 0.5).astype(np.uint8) * 255)
    atomic_write_png(stem.with_suffix(".png"), to_uint16(data["image"][0].numpy()))
    write_json({"image": out_img, "lesions": kept}, record)
    return out_img, kept, problems
