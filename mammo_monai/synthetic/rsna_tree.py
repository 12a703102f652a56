"""An RSNA Screening Mammography-like tree: ``train.csv`` and ``train_images/<patient_id>/<image_id>.dcm``.

The table has the challenge's fourteen columns in its order, with integer ids, ``age`` and ``BIRADS``
written as a float column with gaps (``61.0``, empty) and ``difficult_negative_case`` as True/False.
Each machine writes its files one way (:data:`VENDORS`): JPEG 2000 lossless, JPEG lossless
(Process 14, first-order prediction), MONOCHROME1 with several SIGMOID windows, or plain 16-bit
MONOCHROME2 holding 12 or 16 bits. Nothing identifying is written: no names, no dates, only the ids.
"""

from __future__ import annotations

import heapq
import os
import struct
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import DigitalMammographyXRayImageStorageForPresentation, JPEGLosslessSV1, generate_uid

from mammo_monai.io.atomic import atomic_path, write_csv
from mammo_monai.parallel import run_parallel
from mammo_monai.synthetic.dicom_writer import build_dataset, save_dataset
from mammo_monai.synthetic.phantom import Lesion, breast_tissue, draw_lesion

COLUMNS = [
    "site_id",
    "patient_id",
    "image_id",
    "laterality",
    "view",
    "age",
    "cancer",
    "biopsy",
    "invasive",
    "BIRADS",
    "implant",
    "density",
    "machine_id",
    "difficult_negative_case",
]
MAX_IMAGES_PER_PATIENT = 12  # two exams x two breasts x (CC, MLO, one extra view)
EXTRA_VIEWS = ["MLO", "CC", "ML", "LM", "AT"]
DENSITIES = ["A", "B", "C", "D"]


@dataclass(frozen=True)
class Vendor:
    """How one machine writes its files. ``codec``: "j2k" (JPEG 2000 lossless), "jpeg-lossless"
    (1.2.840.10008.1.2.4.70) or "explicit" (uncompressed); ``window``: None, "LINEAR" (one window)
    or "SIGMOID" (three windows with explanations, the first the default)."""

    machine_id: int
    site_id: int
    codec: str
    photometric: str
    bits_stored: int
    window: str | None
    weight: float

    @property
    def variant(self) -> str:
        return f"{self.codec}/{self.photometric}/{self.bits_stored}-bit/{self.window or 'no window'}"


VENDORS = (
    Vendor(29, 2, "j2k", "MONOCHROME2", 12, None, 0.25),
    Vendor(21, 1, "jpeg-lossless", "MONOCHROME2", 12, None, 0.2),
    Vendor(49, 1, "jpeg-lossless", "MONOCHROME1", 12, "SIGMOID", 0.15),
    Vendor(93, 2, "j2k", "MONOCHROME2", 16, "LINEAR", 0.15),
    Vendor(170, 2, "explicit", "MONOCHROME2", 12, None, 0.1),
    Vendor(216, 1, "explicit", "MONOCHROME2", 16, None, 0.15),
)


def _huffman_lengths(counts: np.ndarray) -> dict[int, int]:
    """Code lengths for the used difference categories 0..16, plus symbol 17, a dummy that takes the
    all-ones code (which JPEG forbids) and is dropped from the table. Falls back to 5-bit codes for all
    in the rare case that a code would exceed the 16 bits the table can describe."""
    symbols = [s for s in range(17) if counts[s]] + [17]
    heap = [(int(counts[s]) if s < 17 else 0, -s, [s]) for s in symbols]
    heapq.heapify(heap)
    depth = dict.fromkeys(symbols, 0)
    while len(heap) > 1:
        f1, t1, s1 = heapq.heappop(heap)
        f2, t2, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            depth[s] += 1
        heapq.heappush(heap, (f1 + f2, min(t1, t2), s1 + s2))
    return depth if max(depth.values()) <= 16 else dict.fromkeys(symbols, 5)


def encode_jpeg_lossless(pixels: np.ndarray, precision: int) -> bytes:
    """One JPEG lossless frame (ITU-T T.81 process 14, predictor 1 = left neighbour, point transform 0),
    the codec of DICOM transfer syntax 1.2.840.10008.1.2.4.70, which no installed package encodes.

    Differences are taken modulo 2**16 and Huffman-coded with a table built for this image.

    Args:
        pixels: 2D unsigned array whose values fit in ``precision`` bits.
        precision: sample precision P, 2..16 (DICOM Bits Stored).
    """
    x = pixels.astype(np.int64)
    pred = np.empty_like(x)
    pred[:, 1:] = x[:, :-1]
    pred[1:, 0] = x[:-1, 0]  # the first column is predicted from above, the first sample from 2**(P-1)
    pred[0, 0] = 1 << (precision - 1)
    diff = ((x - pred + 32768) % 65536 - 32768).ravel()
    cat = np.frexp(np.abs(diff).astype(np.float64))[1].astype(np.int64)  # bit length of |diff|
    extra_len = np.where(cat == 16, 0, cat)  # category 16 (diff 32768) carries no extra bits
    extra = np.where(diff < 0, diff - 1, diff) & ((1 << extra_len) - 1)
    depth = _huffman_lengths(np.bincount(cat, minlength=17))
    order = sorted(depth, key=lambda s: (depth[s], s == 17, s))
    code_of, length_of = np.zeros(18, np.int64), np.zeros(18, np.int64)
    code, prev = 0, depth[order[0]]
    for s in order:  # canonical codes, as T.81 Annex C derives them from the table
        code <<= depth[s] - prev
        prev = depth[s]
        code_of[s], length_of[s] = code, depth[s]
        code += 1
    nbits = length_of[cat] + extra_len  # at most 32 per sample
    words = ((code_of[cat] << extra_len) | extra) << (32 - nbits)
    bits = np.unpackbits(words.astype(">u4").view(np.uint8)).reshape(-1, 32)
    stream = bits[np.arange(32) < nbits[:, None]]
    stream = np.concatenate([stream, np.ones(-len(stream) % 8, np.uint8)])  # pad with 1-bits
    data = np.packbits(stream)
    data = np.insert(data, np.flatnonzero(data == 0xFF) + 1, 0).tobytes()  # byte stuffing
    used = [s for s in order if s != 17]
    dht = bytes([0x00, *[sum(depth[s] == n for s in used) for n in range(1, 17)], *used])
    sof = struct.pack(">BHHB", precision, x.shape[0], x.shape[1], 1) + bytes([1, 0x11, 0])
    sos = bytes([1, 1, 0x00, 1, 0, 0])  # one component, table 0, Ss = predictor 1, Se = 0, Ah/Al = 0

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    return b"\xff\xd8" + segment(0xFFC3, sof) + segment(0xFFC4, dht) + segment(0xFFDA, sos) + data + b"\xff\xd9"


def save_jpeg_lossless(ds: Dataset, path: str | os.PathLike) -> Path:
    """Encode ``ds``'s uncompressed pixels with :func:`encode_jpeg_lossless` and write atomically."""
    pixels = np.frombuffer(ds.PixelData, np.uint16).reshape(int(ds.Rows), int(ds.Columns))
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([encode_jpeg_lossless(pixels, int(ds.BitsStored))])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path


def _windows(stored: np.ndarray, region: np.ndarray, kind: str) -> dict[str, Any]:
    """VOI window attributes framing the breast's stored values."""
    lo, hi = np.percentile(stored[region], [1, 99])
    center, width = (lo + hi) / 2, max(hi - lo, 2.0)
    if kind == "LINEAR":
        return {"WindowCenter": f"{center:.1f}", "WindowWidth": f"{1.3 * width:.1f}", "VOILUTFunction": "LINEAR"}
    return {
        "WindowCenter": [f"{center:.1f}", f"{center - 0.1 * width:.1f}", f"{center + 0.1 * width:.1f}"],
        "WindowWidth": [f"{width:.1f}", f"{0.8 * width:.1f}", f"{1.2 * width:.1f}"],
        "WindowCenterWidthExplanation": ["NORMAL", "HARDER", "SOFTER"],
        "VOILUTFunction": "SIGMOID",
    }


def _write_image(
    path: Path, img: np.ndarray, region: np.ndarray, vendor: Vendor, ids: dict[str, str], rng: np.random.Generator
) -> None:
    """Scale a [0, 1] image (dense bright) to the vendor's bits and write it its way."""
    top = 2**vendor.bits_stored - 1
    display = np.round(np.clip(img, 0, 1) * rng.uniform(0.85, 1.0) * top).astype(np.uint16)
    stored = (top - display).astype(np.uint16) if vendor.photometric == "MONOCHROME1" else display
    ds = build_dataset(
        stored,
        laterality=ids["laterality"],
        laterality_tag="ImageLaterality",
        photometric=vendor.photometric,
        patient_id=ids["patient_id"],
        series_description=f"{ids['laterality']} {ids['view']}",
        study_uid=generate_uid(entropy_srcs=["rsna", ids["patient_id"], ids["exam"]]),
        series_uid=generate_uid(entropy_srcs=["rsna", ids["patient_id"], ids["exam"], ids["image_id"], "series"]),
        sop_uid=generate_uid(entropy_srcs=["rsna", ids["patient_id"], ids["image_id"]]),
    )
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    del ds.ConversionType  # a secondary-capture attribute; these come from the detector
    ds.PatientName = ""  # type 2: present and empty; the anonymous id is the only identifier
    ds.StudyID = ""
    ds.ViewPosition = ids["view"]
    ds.BitsStored, ds.HighBit = vendor.bits_stored, vendor.bits_stored - 1
    ds.PresentationIntentType = "FOR PRESENTATION"
    if vendor.window:
        for key, value in _windows(stored, region, vendor.window).items():
            setattr(ds, key, value)
    if vendor.codec == "jpeg-lossless":
        save_jpeg_lossless(ds, path)
    else:
        save_dataset(ds, path, vendor.codec)


def _breast_labels(rng: np.random.Generator, cancer: bool, site_id: int) -> dict[str, Any]:
    """Consistent per-breast columns: a cancer was biopsied and may be invasive; a recalled negative
    (BI-RADS 0) is a difficult negative, sometimes biopsied. Site 2 gives no BI-RADS."""
    recalled = cancer or rng.random() < 0.12
    birads = 0.0 if recalled else float(rng.choice([1.0, 2.0], p=[0.7, 0.3]))
    return {
        "cancer": int(cancer),
        "biopsy": int(cancer or (recalled and rng.random() < 0.35)),
        "invasive": int(cancer and rng.random() < 0.7),
        "BIRADS": birads if site_id == 1 else np.nan,
        "difficult_negative_case": bool(recalled and not cancer),
    }


def _render_view(
    rng: np.random.Generator, size: tuple[int, int], view: str, density: int, side: str, labels: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """One view as a [0, 1] image and its breast region, chest wall on the side it is displayed on (left
    for L). A cancer shows as a malignant-looking mass or calcification cluster; a difficult negative
    as the benign-looking mass that was recalled."""
    img, region, interior = breast_tissue(rng, size, view, density)
    look = None
    if labels["cancer"]:
        look = ("mass" if rng.random() < 0.7 else "calcification", True, 0.12)
    elif labels["difficult_negative_case"]:
        look = ("mass", False, 0.08)
    if look is not None:
        kind, malignant, contrast = look
        row, col = np.argwhere(interior)[rng.integers(interior.sum())]
        radius = size[0] * (rng.uniform(0.02, 0.04) if kind == "mass" else rng.uniform(0.015, 0.03))
        draw_lesion(img, Lesion(kind, malignant, (float(row), float(col)), radius, contrast, int(rng.integers(2**31))))
    if side == "R":
        img, region = img[:, ::-1].copy(), region[:, ::-1].copy()
    return img, region


def make_rsna_patient(
    root: Path,
    seed: int,
    index: int,
    patient_id: int,
    image_ids: list[int],
    positive_sides: tuple[str, ...],
    size: tuple[int, int],
) -> list[dict[str, Any]]:
    """Write every image of one patient under ``root/train_images/<patient_id>``; return the table rows
    (plus ``_variant``). The first ``len(VENDORS)`` patients take each vendor in turn, so that even a
    tiny tree holds every file variant; the rest draw one by weight."""
    rng = np.random.default_rng([seed, index])
    weights = np.array([v.weight for v in VENDORS])
    vendor = VENDORS[index] if index < len(VENDORS) else VENDORS[rng.choice(len(VENDORS), p=weights / weights.sum())]
    age = np.nan if rng.random() < 0.01 else float(np.clip(round(rng.normal(58, 10)), 26, 89))
    implant = int(rng.random() < 0.03)
    density = (
        ""
        if rng.random() < (0.5 if vendor.site_id == 2 else 0.1)
        else str(rng.choice(DENSITIES, p=[0.1, 0.43, 0.4, 0.07]))
    )
    drawn_density = DENSITIES.index(density) + 1 if density else int(rng.integers(1, 5))
    labels = {side: _breast_labels(rng, side in positive_sides, vendor.site_id) for side in ("L", "R")}
    exams = 2 if rng.random() < 0.1 else 1
    ids = iter(image_ids)
    rows = []
    for exam in range(exams):
        for side in ("L", "R"):
            views = ["CC", "MLO"] + ([str(rng.choice(EXTRA_VIEWS))] if rng.random() < 0.1 else [])
            for view in views:
                img, region = _render_view(rng, size, view, drawn_density, side, labels[side])
                image_id = str(next(ids))
                meta = {
                    "patient_id": str(patient_id),
                    "image_id": image_id,
                    "laterality": side,
                    "view": view,
                    "exam": str(exam),
                }
                _write_image(
                    root / "train_images" / str(patient_id) / f"{image_id}.dcm", img, region, vendor, meta, rng
                )
                rows.append(
                    {
                        "site_id": vendor.site_id,
                        "patient_id": patient_id,
                        "image_id": int(image_id),
                        "laterality": side,
                        "view": view,
                        "age": age,
                        **labels[side],
                        "implant": implant,
                        "density": density,
                        "machine_id": vendor.machine_id,
                        "_variant": vendor.variant,
                    }
                )
    return rows


def make_rsna_tree(
    root: str | os.PathLike,
    patients: int = 100,
    seed: int = 0,
    size: tuple[int, int] = (1152, 896),
    positive_fraction: float = 0.03,
    workers: int | None = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate ``patients`` synthetic RSNA screening patients under ``root``.

    ``round(positive_fraction * 2 * patients)`` breasts (at least one when ``positive_fraction`` > 0)
    are positive: a malignant-looking lesion on each of their views and ``cancer`` = 1 on their rows.
    Patient ids (five digits up to 45 000 patients) and image ids (< 2**31) are distinct integers. Deterministic per
    ``seed``, ``patients`` and ``positive_fraction`` whatever ``workers`` is.

    Returns:
        A summary: root, patients, images, breasts, positive breasts and their fraction, positive
        images, the count of files per variant (codec/photometric/bits/window), seconds.
    """
    t0 = time.time()
    root = Path(root)
    h, w = int(size[0]), int(size[1])
    rng = np.random.default_rng([seed, 2022])
    patient_ids = np.sort(rng.choice(np.arange(10000, max(65535, 10000 + 2 * patients)), patients, replace=False))
    image_ids = rng.choice(2**31 - 2, patients * MAX_IMAGES_PER_PATIENT, replace=False) + 1
    n_pos = max(1, round(positive_fraction * 2 * patients)) if positive_fraction > 0 else 0
    positive = set(rng.choice(2 * patients, min(n_pos, 2 * patients), replace=False).tolist())
    jobs = [
        (
            root,
            seed,
            i,
            int(pid),
            image_ids[i * MAX_IMAGES_PER_PATIENT : (i + 1) * MAX_IMAGES_PER_PATIENT].tolist(),
            tuple(side for k, side in enumerate("LR") if 2 * i + k in positive),
            (h, w),
        )
        for i, pid in enumerate(patient_ids)
    ]
    results = run_parallel(make_rsna_patient, jobs, workers, "synth rsna", progress)
    table = pd.DataFrame([row for rows in results for row in rows], columns=[*COLUMNS, "_variant"])
    write_csv(table[COLUMNS], root / "train.csv")
    breasts = table.groupby(["patient_id", "laterality"])["cancer"].max()
    return {
        "root": str(root),
        "patients": patients,
        "images": len(table),
        "breasts": len(breasts),
        "positive_breasts": int(breasts.sum()),
        "positive_breast_fraction": round(float(breasts.mean()), 4) if len(breasts) else 0.0,
        "positive_images": int(table["cancer"].sum()),
        "variants": dict(sorted(Counter(table["_variant"]).items())),
        "seconds": round(time.time() - t0, 2),
    }
