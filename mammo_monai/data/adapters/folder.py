"""Plain folders in Shen et al.'s whole-image layout: ``<split>/<neg|pos>/*``."""

from __future__ import annotations

import os
from pathlib import Path

from mammo_monai.data.adapters.base import AdapterResult
from mammo_monai.io.naming import parse_path
from mammo_monai.io.raster import RASTER_SUFFIXES
from mammo_monai.io.reader import DICOM_SUFFIXES

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
CLASS_NAMES = {"neg": 0, "pos": 1, "benign": 0, "malignant": 1, "0": 0, "1": 1}


def load_folder(root: str | os.PathLike) -> AdapterResult:
    """Read ``root/<train|val|test>/<neg|pos>/<image>`` (any readable type). The split is kept;
    without patient information each file is its own patient; laterality and view come from the
    file name when it carries them (else laterality is inferred from the tissue at caching)."""
    root = Path(root)
    images, errors = [], []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split = SPLIT_NAMES.get(split_dir.name.lower())
        if split is None:
            errors.append({"file": str(split_dir), "reason": f"folder name not a split ({sorted(SPLIT_NAMES)}); skipped"})
            continue
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            label = CLASS_NAMES.get(class_dir.name.lower())
            if label is None:
                errors.append({"file": str(class_dir), "reason": f"folder name not a class ({sorted(CLASS_NAMES)}); skipped"})
                continue
            for f in sorted(class_dir.iterdir()):
                if not f.is_file() or f.suffix.lower() not in DICOM_SUFFIXES + RASTER_SUFFIXES:
                    continue
                side, view = parse_path(f, levels=0)
                images.append({"image_id": f"{split}_{class_dir.name}_{f.stem}", "image": str(f), "patient_id": f"{split}_{f.stem}",
                               "laterality": side, "view": view, "label": label, "dataset": "folder", "split": split})
    if not images:
        errors.append({"file": str(root), "reason": "no image found in <split>/<neg|pos>/ folders"})
    return AdapterResult.from_rows(images, [], errors)
