"""KAU-BCMD (King Abdulaziz University Breast Cancer Mammogram Dataset, version 1; Alsolami et al., Data
6(11):111, 2021): JPEG mammograms in one folder per BI-RADS category.

Layout read: any folder whose name is a BI-RADS category (``BIRAD1``, ``Birad3``, ``birads 4``,
``BI-RADS5``: case and separators vary) and everything below it, e.g. the Kaggle copy's
``BIRAD1/b1/``, ``Birad3/b3/``, ``Birad4/b4/``, ``Birad5/Birad5/``. Folders named for ultrasound, masks or
reports are left out. The category is the CASE's (its radiologists' consensus), given to all four views,
the contralateral breast included.

The package's readers take no JPEG (lossy, by design); each JPEG is decoded once (Pillow, converted to
8-bit grey) into a lossless PNG in a derived folder (:mod:`.derived_images`), remade when the JPEG is newer.
Sources: the data descriptor (MDPI Data, doi:10.3390/data6110111: 1416 cases, CC and MLO of both breasts,
BI-RADS 1, 3, 4, 5) and the folder names public code reads from the Kaggle copy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mammo_monai.data.adapters.base import AdapterResult, safe_name, walk_files
from mammo_monai.data.adapters.derived_images import derived_dir, is_fresh
from mammo_monai.io.raster import atomic_write_png

SUFFIXES = (".jpg", ".jpeg", ".png")
SHEETS = (".xlsx", ".xls", ".csv", ".txt", ".pdf")
_BIRADS_DIR = re.compile(r"^bi[-_ ]?rads?[-_ ]?(\d+)$", re.I)
_NOT_MAMMO = re.compile(r"(ultra[-_ ]?sound|^us$|mask|report)", re.I)
_SIDE_VIEW = re.compile(r"(?<![A-Za-z])(R|L|RIGHT|LEFT)[-_ ]?(CC|MLO)(?![A-Za-z])", re.I)


def _category(path: Path, root: Path) -> tuple[Path, str] | None:
    """The nearest BI-RADS folder above ``path`` (below ``root``) and its number as written."""
    for parent in path.relative_to(root).parents:
        m = _BIRADS_DIR.match(parent.name)
        if m:
            return root / parent, m.group(1)
    return None


def _to_png(src: Path, out: Path, errors: list[dict[str, str]]) -> Path | None:
    """``out``: ``src`` decoded to 8-bit grey, unless a fresh copy is there; None (reported) when it cannot be read."""
    try:
        if not is_fresh(out, src):
            with Image.open(src) as im:
                atomic_write_png(out, np.asarray(im.convert("L")))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        errors.append(
            {"file": str(src), "reason": f"cannot be read as an image ({type(err).__name__}: {err}); skipped"}
        )
        return None
    return out


def _image_row(path: Path, image_id: str, png: Path, birads: int, birads_cut: int, case_re: re.Pattern) -> dict:
    """The manifest row of one image: patient from ``case_re``, side and view from the file name."""
    case = case_re.search(path.stem)
    side_view = _SIDE_VIEW.search(path.stem)
    return {
        "image_id": image_id,
        "image": str(png),
        "patient_id": case.group(1) if case and case.groups() else (case.group(0) if case else path.stem),
        "laterality": side_view.group(1)[0].upper() if side_view else "",
        "view": side_view.group(2).upper() if side_view else "",
        "label": int(birads >= birads_cut),
        "dataset": "kau-bcmd",
        "split": "",
        "label_source": f"kau-bcmd: case BI-RADS folder >= {birads_cut} = 1",
        "birads": birads,
        "source_jpeg": str(path),
    }


def load_kau_bcmd(
    root: str | os.PathLike,
    birads_cut: int = 4,
    case_pattern: str = r"(\d+)",
    derived: str | os.PathLike | None = None,
) -> AdapterResult:
    """Read KAU-BCMD. Label (``label_source`` column): 1 when the folder's BI-RADS >= ``birads_cut``
    (default 4: categories 4 and 5 suspicious), else 0; a category outside 1-6 (0 = incomplete) is an
    unknown label: its folder is reported once and skipped.

    Patient: the case number, the first match of ``case_pattern`` in the file name (default: the first
    run of digits); laterality and view from a ``RCC`` / ``L_MLO`` / ``LEFT-CC`` token in the name, else
    left empty (preprocessing infers the side from the pixels). KAU-BCMD defines no split.

    Not verified without the real files: the image file names (case number and view tokens), whether
    every copy nests its JPEGs the same way, and the metadata sheet (``correctSheetlast.xlsx`` in some
    copies), which is not read: the folder gives the category.

    Raises:
        FileNotFoundError: no BI-RADS folder below ``root``.
    """
    root = Path(root)
    errors: list[dict[str, str]] = []
    files = walk_files(root, errors, keep=lambda n: n.lower().endswith(SUFFIXES))
    errors = [e for e in errors if not str(e["file"]).lower().endswith(SHEETS)]  # the metadata sheet is no image
    out_dir = derived_dir("kau-bcmd", root, derived)
    case_re = re.compile(case_pattern)
    images: list[dict[str, Any]] = []
    bad_folders: set[Path] = set()
    found_any = False
    for path in sorted(files):
        rel_parts = path.relative_to(root).parts
        if any(_NOT_MAMMO.search(part) for part in rel_parts[:-1]) or path.is_relative_to(out_dir):
            continue
        category = _category(path, root)
        if category is None:
            errors.append({"file": str(path), "reason": "not inside a BI-RADS folder (e.g. Birad4); skipped"})
            continue
        found_any = True
        folder, number = category
        birads = int(number)
        if not 1 <= birads <= 6:
            if folder not in bad_folders:
                errors.append(
                    {
                        "file": str(folder),
                        "reason": f"unknown label value: BI-RADS {number} is not 1-6 (the whole folder); skipped",
                    }
                )
                bad_folders.add(folder)
            continue
        image_id = safe_name(f"birads{birads}_{'_'.join(rel_parts[len(folder.relative_to(root).parts) :])}").rsplit(
            ".", 1
        )[0]
        png = _to_png(path, out_dir / f"{image_id}.png", errors)
        if png is not None:
            images.append(_image_row(path, image_id, png, birads, birads_cut, case_re))
    if not found_any:
        raise FileNotFoundError(f"{root}: no BI-RADS folder (BIRAD1, Birad3, ...) with images below it")
    return AdapterResult.from_rows(images, [], errors, truth_rows=None)
