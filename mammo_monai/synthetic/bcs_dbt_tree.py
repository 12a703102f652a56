"""A miniature BCS-DBT download (TCIA Breast-Cancer-Screening-DBT) with its published tables and quirks.

Layout: ``Breast-Cancer-Screening-DBT/<PatientID>/<date>-DBT-<study>/<series>/1-1.dcm``, one multi-frame
Breast Tomosynthesis DICOM per view (window in the shared functional groups), and per set (train,
validation, test) the ``file-paths``, ``labels`` and ``boxes`` tables with TCIA's columns. Quirks kept:
boxes are given in the frame the Duke reference code shows (a volume stored turned by 180 degrees is
turned back before its boxes apply), such a volume's header laterality is wrong, a patient can lack
views, one view holds boxes on two slices, and the training boxes table has no ``VolumeSlices`` column.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mammo_monai.synthetic.dicom_writer import build_dataset, make_uid, save_dataset
from mammo_monai.synthetic.view_render import render_view

BREAST_TOMOSYNTHESIS_STORAGE = "1.2.840.10008.5.1.4.1.1.13.1.3"
SETS = ("train", "validation", "test")
VIEWS = ("lcc", "lmlo", "rcc", "rmlo")
LABEL_COLUMNS = ["PatientID", "StudyUID", "View", "Normal", "Actionable", "Benign", "Cancer"]
PATH_COLUMNS = ["PatientID", "StudyUID", "View", "descriptive_path", "classic_path"]
BOX_COLUMNS = [
    "PatientID",
    "StudyUID",
    "View",
    "Subject",
    "Slice",
    "X",
    "Y",
    "Width",
    "Height",
    "Class",
    "AD",
    "VolumeSlices",
]


def write_volume(path: Path, frames: np.ndarray, side_in_header: str, window: tuple[float, float]) -> None:
    """Write ``frames`` (N, H, W uint16) as a Breast Tomosynthesis multi-frame DICOM."""
    ds = build_dataset(frames[0], laterality=side_in_header, laterality_tag="ImageLaterality", patient_id="DBT")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = BREAST_TOMOSYNTHESIS_STORAGE
    ds.NumberOfFrames = int(frames.shape[0])
    voi, anatomy, group = Dataset(), Dataset(), Dataset()
    voi.WindowCenter, voi.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
    anatomy.FrameLaterality = side_in_header
    group.FrameVOILUTSequence = Sequence([voi])
    group.FrameAnatomySequence = Sequence([anatomy])
    ds.SharedFunctionalGroupsSequence = Sequence([group])
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_dataset(ds, path)


def _volume(rng: np.random.Generator, shape: tuple[int, int], n: int, side: str, view: str, lesions: list) -> tuple:
    """(N, H, W) uint16 frames with each lesion on one slice, and the lesions with their slice."""
    tissue = int(rng.integers(1 << 30))  # the same seed draws the same breast, with and without the lesions
    base, drawn = render_view(np.random.default_rng(tissue), shape, side, view, [(k, m) for k, m, _ in lesions])
    plain, _ = render_view(np.random.default_rng(tissue), shape, side, view, [])
    frames = []
    for i in range(n):
        img = plain.copy() if i else plain
        for d, (_, _, index) in zip(drawn, lesions):
            if i == index:
                img = np.where(d.mask, base, img)
        noise = 0.01 * rng.standard_normal(shape)
        frames.append(np.clip((img + noise * (img > 0)) * 4000, 0, 4095).astype(np.uint16))
    return np.stack(frames), [(d, index) for d, (_, _, index) in zip(drawn, lesions)]


def _plan(index: int) -> dict[str, tuple[str, list]]:
    """Per view of patient ``index``: its group and lesions ``(kind, malignant, slice)``."""
    groups = {v: ("Normal", []) for v in VIEWS}
    kind = index % 4
    if kind == 0:
        groups["rcc"] = ("Cancer", [("mass", True, 3), ("mass", True, 5)])
        groups["rmlo"] = ("Cancer", [("mass", True, 4)])
    elif kind == 1:
        groups["lcc"] = ("Benign", [("mass", False, 2)])
        groups["lmlo"] = ("Benign", [])
    elif kind == 2:
        groups["lmlo"] = ("Actionable", [])
    return groups


def make_bcs_dbt_tree(
    root: str | os.PathLike, patients: int = 6, seed: int = 0, size: tuple[int, int] = (128, 96), frames: int = 8
) -> dict[str, Any]:
    """Write the miniature under ``root``; returns the truth: one entry per view with its set, group,
    volume, whether it is stored turned, and its boxes (top, left, height, width) in the reference frame
    (the volume turned back), as the boxes table gives them."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    tables: dict[str, dict[str, list]] = {s: {"paths": [], "labels": [], "boxes": []} for s in SETS}
    truth: list[dict[str, Any]] = []
    turn_next = True
    for p in range(patients):
        pid, study = f"DBT-P{p + 1:05d}", make_uid("dbt", seed, p)
        split = SETS[p % len(SETS)]
        for view, (group, lesions) in _plan(p).items():
            if p % 5 == 4 and view.endswith("mlo"):
                continue  # a patient with fewer views
            stack, placed = _volume(rng, size, frames, view[0].upper(), view[1:], lesions)
            turned = bool(placed) and turn_next
            turn_next = turn_next if not placed else not turn_next
            stored = stack[:, ::-1, ::-1] if turned else stack
            header_side = ("L" if view[0] == "r" else "R") if turned else view[0].upper()
            rel = Path(
                "Breast-Cancer-Screening-DBT",
                pid,
                f"01-01-2000-DBT-S{p:05d}",
                f"{18000 + p}.000000-NA-{view}",
                "1-1.dcm",
            )
            write_volume(root / rel, np.ascontiguousarray(stored), header_side, (2000.0, 4000.0))
            classic = Path("Breast-Cancer-Screening-DBT", pid, study, make_uid("series", seed, p, view), "1-1.dcm")
            tables[split]["paths"].append([pid, study, view, rel.as_posix(), classic.as_posix()])
            tables[split]["labels"].append([pid, study, view, *(int(group == g) for g in LABEL_COLUMNS[3:])])
            boxes = []
            for d, index in placed:
                top, left, h, w = d.box()
                tables[split]["boxes"].append(
                    [pid, study, view, 0, index, left, top, w, h, "cancer" if d.malignant else "benign", 0, frames]
                )
                boxes.append(
                    {"slice": index, "box": (top, left, h, w), "pathology": "malignant" if d.malignant else "benign"}
                )
            truth.append(
                {
                    "PatientID": pid,
                    "View": view,
                    "set": split,
                    "group": group.lower(),
                    "volume": str(root / rel),
                    "turned": turned,
                    "boxes": boxes,
                    "frames": frames,
                }
            )
    _write_tables(root, tables)
    return {"views": truth, "patients": patients}


def _write_tables(root: Path, tables: dict[str, dict[str, list]]) -> None:
    """The file-paths, labels and boxes tables of every set (``-v2`` names), as TCIA ships them."""
    for split, t in tables.items():
        for kind, header in (("paths", PATH_COLUMNS), ("labels", LABEL_COLUMNS), ("boxes", BOX_COLUMNS)):
            name = {"paths": "file-paths", "labels": "labels", "boxes": "boxes"}[kind]
            rows = [header, *t[kind]]
            if kind == "boxes" and split == "train":  # the training boxes table has no VolumeSlices column
                rows = [r[:-1] for r in rows]
            with open(root / f"BCS-DBT {name}-{split}-v2.csv", "w", newline="") as fh:
                csv.writer(fh).writerows(rows)
