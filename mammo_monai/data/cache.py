"""The preprocessing cache: each image once as a masked, oriented, resized 16-bit PNG, with its breast
mask and its lesion masks carried through the same transforms.

A cached image records only what preprocessing made (paths, flip, original size, lesion geometry);
labels and splits are re-derived from the dataset on every ``prepare``, so a changed truth file or
split seed can never be hidden by the cache. Each record also keeps a hash of its inputs (source
file, laterality, lesion rows): when they change, the image is made again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.draw import disk

from mammo_monai.data.manifest import MIN_RADIUS
from mammo_monai.data.preprocessing_settings import PreprocessingSettings
from mammo_monai.io.atomic import write_json
from mammo_monai.io.errors import MammogramError, describe_error
from mammo_monai.io.raster import atomic_write_png, to_uint16
from mammo_monai.io.reader import LoadMammogramd, read_mammogram
from mammo_monai.transforms import pipelines  # noqa: F401  (imported once by the workers' fork server)

# An ROI mask this far off the image's size (per axis: pixels, or fraction of the side) is padded or
# cropped to fit (CBIS-DDSM has masks a few pixels off); farther off it is another image's mask.
MASK_TOLERANCE_PX, MASK_TOLERANCE_FRACTION = 16, 0.01
# the cached columns that preprocessing decides; everything else comes fresh from the adapter
CACHED_IMAGE_KEYS = (
    "image",
    "source",
    "breast_mask",
    "flipped",
    "pixel_side",
    "laterality_mismatch",
    "original_rows",
    "original_columns",
)


def fit_mask(mask: np.ndarray, shape: tuple[int, int], path: str, notes: list[str]) -> np.ndarray:
    """``mask`` padded with zeros or cropped at the bottom/right to ``shape``, when only a few pixels off.

    Raises:
        MammogramError: the sizes differ by more than the tolerance (a mask of another image, or of
            a cropped lesion): such a mask is never stretched over the image.
    """
    if mask.shape == shape:
        return mask
    off = [abs(a - b) for a, b in zip(mask.shape, shape)]
    limit = [max(MASK_TOLERANCE_PX, MASK_TOLERANCE_FRACTION * s) for s in shape]
    if any(o > lim for o, lim in zip(off, limit)):
        raise MammogramError(
            path,
            f"ROI mask {mask.shape[0]}x{mask.shape[1]} does not match the image's "
            f"{shape[0]}x{shape[1]} (off by {off[0]} rows, {off[1]} columns); mask rejected",
        )
    out = np.zeros(shape, bool)
    rows, cols = min(shape[0], mask.shape[0]), min(shape[1], mask.shape[1])
    out[:rows, :cols] = mask[:rows, :cols]
    notes.append(
        f"{path}: ROI mask {mask.shape[0]}x{mask.shape[1]} differs from the image's {shape[0]}x{shape[1]}; "
        "padded/cropped at the bottom and right to fit"
    )
    return out


def lesion_mask(lesion: dict[str, Any], shape: tuple[int, int], notes: list[str]) -> np.ndarray | None:
    """Boolean mask of one lesion in the ORIGINAL image's pixels, from its mask file or its circle.

    Fills the lesion's ``center_row``, ``center_col`` and ``radius`` (equivalent-area radius) from
    a mask. Returns None for a lesion without geometry (no mask, no centre: e.g. a truth row that
    carries a note instead of coordinates).

    Raises:
        MammogramError: an empty or badly sized mask, or a centre outside the image.
    """
    path = str(lesion.get("mask") or "")
    if path and path != "nan":
        arr, _ = read_mammogram(path, modalities=None)
        m = fit_mask(arr[0] > 0, shape, path, notes)
        if not m.any():
            raise MammogramError(path, "empty ROI mask")
        rows, cols = np.nonzero(m)
        lesion.update(
            center_row=round(float(rows.mean()), 1),
            center_col=round(float(cols.mean()), 1),
            radius=round(float(np.sqrt(m.sum() / np.pi)), 1),
        )
        return m
    r, c, rad = (_number(lesion.get(k)) for k in ("center_row", "center_col", "radius"))
    if np.isnan(r) or np.isnan(c):
        return None
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise MammogramError(
            lesion.get("image"), f"lesion centre ({r:g}, {c:g}) lies outside the {shape[0]}x{shape[1]} image"
        )
    m = np.zeros(shape, bool)
    m[disk((r, c), max(rad if not np.isnan(rad) else MIN_RADIUS, 1.0), shape=shape)] = True
    return m


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def inputs_hash(image: Mapping[str, Any], lesions: list[dict[str, Any]]) -> str:
    """Hash of what a cached image was made from: source file (path, size, mtime), laterality, lesions."""
    src = str(image["image"])
    try:
        st = os.stat(src)
        stamp = [st.st_size, int(st.st_mtime)]
    except OSError:
        stamp = []
    geometry = [{k: str(les.get(k, "")) for k in ("mask", "center_row", "center_col", "radius")} for les in lesions]
    blob = json.dumps([src, stamp, str(image.get("laterality") or ""), geometry], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def finished(
    image: Mapping[str, Any], lesions: list[dict[str, Any]], out_dir: str | os.PathLike
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, str]]] | None:
    """What :func:`cache_image` returned when it cached this image into ``out_dir`` before, provided the PNG
    and its ``.json`` record are there and were made from the same inputs (:func:`inputs_hash`); else None."""
    stem = Path(out_dir) / "images" / image["image_id"]
    record = stem.with_suffix(".json")
    if not (record.is_file() and stem.with_suffix(".png").is_file()):
        return None
    done = json.loads(record.read_text())
    if done.get("inputs") != inputs_hash(image, lesions):
        return None
    return done["image"], done["lesions"], done.get("problems", [])


def _outside_breast(lesion_mask_cached: np.ndarray, breast: np.ndarray) -> bool:
    """True when the lesion's centre (in cached pixels) is not on the breast mask."""
    rows, cols = np.nonzero(lesion_mask_cached)
    if rows.size == 0:
        return True
    return not bool(breast[int(round(rows.mean())), int(round(cols.mean()))])


def cache_image(
    image: dict[str, Any],
    lesions: list[dict[str, Any]],
    out_dir: str | os.PathLike,
    settings: PreprocessingSettings | Mapping[str, Any],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, str]]]:
    """Cache one image and its lesions; returns (cached image columns, lesion rows, problems).

    The image columns are :data:`CACHED_IMAGE_KEYS`: ``image`` (the cached PNG), ``source`` (the
    original), ``breast_mask``, ``flipped``, the orientation check and the original size. Lesion rows
    gain ``cached_mask`` (in the cached image's pixels) and ``outside_breast``, and keep their geometry
    in the original's. A lesion whose centre lies outside the breast mask is kept, flagged and reported;
    a lesion with unusable geometry keeps its image, without geometry, and is reported. A finished image
    (PNG and its ``.json`` record present, made from the same inputs) is not redone. An output that
    cannot be written (a full disk) fails the image with a problem naming that output and the reason.
    """
    if not isinstance(settings, PreprocessingSettings):  # a recorded dict
        settings = PreprocessingSettings.from_record(settings)
    out = Path(out_dir)
    stem = out / "images" / image["image_id"]
    done = finished(image, lesions, out)
    if done is not None:
        return done
    key = inputs_hash(image, lesions)
    problems: list[dict[str, str]] = []
    src = image["image"]
    try:
        data = LoadMammogramd("image", laterality_key="_file_laterality", modalities=settings.modalities)(
            {"image": src, "laterality": image.get("laterality") or ""}
        )
        shape = tuple(data["image"].shape[-2:])
        keys, kept = _add_lesion_masks(data, lesions, shape, problems)
        data = settings.transforms(extra_mask_keys=[k for k, _ in keys], load=False)(data)
    except Exception as err:
        return None, [], [{"file": src, "reason": describe_error(err, src)}]
    cached = _cached_columns(image, data, stem, shape)
    try:
        _write_outputs(data, keys, cached, kept, problems, src, stem, key)
    except OSError as err:  # a WriteError names the output: "cannot write …: no space left on device"
        return None, [], [{"file": src, "reason": describe_error(err)}]
    return cached, kept, problems


def _add_lesion_masks(
    data: dict[str, Any], lesions: list[dict[str, Any]], shape: tuple[int, ...], problems: list[dict[str, str]]
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """Put each lesion's mask (original pixels) into ``data`` as ``lesion<k>``, for the image's transforms.

    Returns:
        ([(key, lesion row)] of the lesions with a mask, every lesion row with ``cached_mask`` and
        ``outside_breast`` added); a lesion whose geometry is unusable keeps its row, without geometry,
        and is reported in ``problems`` (as are the notes of a mask fitted to the image).
    """
    keys, kept = [], []
    for k, lesion in enumerate(lesions):
        lesion = {**lesion, "cached_mask": "", "outside_breast": False}
        notes: list[str] = []
        try:
            m = lesion_mask(lesion, shape, notes)
        except MammogramError as err:
            problems.append({"file": err.path, "reason": f"{err.problem}; lesion kept without geometry"})
            lesion.update(mask="", center_row=float("nan"), center_col=float("nan"), radius=float("nan"))
            m = None
        problems += [{"file": n.split(": ", 1)[0], "reason": n.split(": ", 1)[1]} for n in notes]
        if m is not None:
            data[f"lesion{k}"] = torch.from_numpy(m[None]).float()
            keys.append((f"lesion{k}", lesion))
        kept.append(lesion)
    return keys, kept


def _cached_columns(
    image: Mapping[str, Any], data: dict[str, Any], stem: Path, shape: tuple[int, ...]
) -> dict[str, Any]:
    """The manifest columns preprocessing decided (:data:`CACHED_IMAGE_KEYS`; ``laterality`` too when the
    dataset gave none: the side the image was found to face)."""
    flipped = bool(data["flipped"])
    cached = {
        "image": str(stem.with_suffix(".png")),
        "source": image["image"],
        "breast_mask": f"{stem}_mask.png",
        "flipped": flipped,
        "pixel_side": data.get("pixel_side", ""),
        "laterality_mismatch": bool(data.get("laterality_mismatch", False)),
        "original_rows": shape[0],
        "original_columns": shape[1],
    }
    if not image.get("laterality"):
        cached["laterality"] = "R" if flipped else "L"
    return cached


def _write_outputs(
    data: dict[str, Any],
    keys: list[tuple[str, dict[str, Any]]],
    cached: dict[str, Any],
    kept: list[dict[str, Any]],
    problems: list[dict[str, str]],
    src: str,
    stem: Path,
    key: str,
) -> None:
    """Write the lesion masks, the breast mask, the image and, last, its ``.json`` record (the sign it is done)."""
    breast = data["mask"][0].numpy() > 0
    lesions_dir = stem.parent.parent / "lesions"
    lesions_dir.mkdir(parents=True, exist_ok=True)
    for key_name, lesion in keys:
        m = data[key_name][0].numpy() > 0.5
        path = lesions_dir / f"{stem.name}_{key_name}.png"
        atomic_write_png(path, m.astype(np.uint8) * 255)
        lesion["cached_mask"] = str(path)
        if _outside_breast(m, breast):
            lesion["outside_breast"] = True
            problems.append(
                {
                    "file": src,
                    "reason": f"lesion at ({lesion['center_row']}, {lesion['center_col']}) lies outside "
                    "the breast mask (an error in the truth data?); no lesion patch will be cut",
                }
            )
    atomic_write_png(f"{stem}_mask.png", breast.astype(np.uint8) * 255)
    atomic_write_png(stem.with_suffix(".png"), to_uint16(data["image"][0].numpy()))
    record = {"inputs": key, "image": cached, "lesions": kept, "problems": problems}
    write_json(record, stem.with_suffix(".json"))  # last: its presence means done
