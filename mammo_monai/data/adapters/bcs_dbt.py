"""BCS-DBT (Breast-Cancer-Screening-DBT, TCIA, DOI 10.7937/E4WT-CD02): Duke tomosynthesis volumes, one 2-D
slice per image.

Reads the tables TCIA publishes per set (train, validation, test), version 1 or 2 names alike
(``BCS-DBT file-paths-train-v2.csv``, ``BCS-DBT-labels-train.csv``, ...; the newest name wins):

- file paths: ``PatientID, StudyUID, View, descriptive_path, classic_path`` (paths relative to the
  download folder, starting with ``Breast-Cancer-Screening-DBT/``);
- labels: ``PatientID, StudyUID, View, Normal, Actionable, Benign, Cancer`` (one 1 per row);
- boxes: ``PatientID, StudyUID, View, Subject, Slice, X, Y, Width, Height, Class, AD, VolumeSlices``.

Views are ``lcc``, ``lmlo``, ``rcc``, ``rmlo``; a view's volume is one multi-frame DICOM. ``VolumeSlices``
is missing from some sets' boxes table and not needed: the frame count is read from the volume's header.
Sources: TCIA's collection page, Buda et al. (JAMA Netw Open 2021), the Duke reference code
(github.com/mazurowski-lab/duke-dbt-data: ``dcmread_image``, ``read_boxes``).

Orientation: the boxes are given in the frame the Duke reference code ``dcmread_image`` shows, which
turns a volume by 180 degrees when the breast lies on the other side than the view's laterality (the
side test: first-column sum < last-column sum means right). The derived slice is written in that
frame (:mod:`.dbt_slices`; ``turned`` column True when it was turned), so the boxes apply to it as
given and its chest wall is where its laterality says; the manifest's "original pixels" are the
derived slice's. Laterality and view come from ``View`` (the DICOM header's laterality is wrong for
some volumes, TCIA notes).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult, read_table, safe_name
from mammo_monai.data.adapters.dbt_slices import frame_count, was_turned, write_slice
from mammo_monai.data.adapters.derived_images import derived_dir, is_fresh
from mammo_monai.data.adapters.geometry import sized_box_geometry
from mammo_monai.io.errors import MammogramError

KEY = ["PatientID", "StudyUID", "View"]
LABEL_GROUPS = ["Normal", "Actionable", "Benign", "Cancer"]
BOX_COLUMNS = [*KEY, "Slice", "X", "Y", "Width", "Height", "Class"]
SPLITS = {"train": "train", "validation": "val", "test": "test"}
_TABLE = re.compile(r"(file-paths|labels|boxes)-(train|validation|test)", re.I)
_PATHOLOGY = {"cancer": "malignant", "benign": "benign"}


def find_tables(root: Path) -> dict[tuple[str, str], Path]:
    """``{(kind, set): csv}`` for the tables in ``root`` or one folder down; of two versions of a table
    (``-v2`` and none) the name sorting last is taken."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted([*root.glob("*.csv"), *root.glob("*/*.csv")], key=lambda p: p.name):
        m = _TABLE.search(path.name)
        if m:
            found[(m.group(1).lower(), m.group(2).lower())] = path
    return found


def _group(row: pd.Series) -> str | None:
    """The one label group whose column is 1, or None when the row has none, several or a bad value."""
    values = [str(row[g]).strip() for g in LABEL_GROUPS]
    if any(v not in {"0", "1"} for v in values) or values.count("1") != 1:
        return None
    return LABEL_GROUPS[values.index("1")].lower()


def _volume(root: Path, relative: str) -> Path | None:
    """The volume a table path names: under ``root``, its parent, or ``root`` without the path's first folder."""
    rel = Path(str(relative).strip().replace("\\", "/"))
    for cand in (root / rel, root.parent / rel, root / Path(*rel.parts[1:]) if len(rel.parts) > 1 else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def _slice_file(volume: Path, index: int, out: Path, side: str, view: str) -> bool:
    """Whether the derived slice ``out`` is turned; written unless already up to date."""
    if not is_fresh(out, volume):
        return write_slice(volume, index, out, side, view)["turned"]
    return was_turned(out)


def _read_set(tables: dict, name: str, path_column: str, errors: list[dict[str, str]]) -> pd.DataFrame | None:
    """File paths joined with labels (and the set's name) for one set; None when its tables are missing."""
    paths, labels = tables.get(("file-paths", name)), tables.get(("labels", name))
    if paths is None or labels is None:
        have = paths or labels
        if have is not None:
            missing = "labels" if labels is None else "file-paths"
            errors.append(
                {"file": str(have), "reason": f"no {missing} table for the {name} set (all its views); skipped"}
            )
        return None
    fp = read_table(paths, required=[*KEY, path_column], dtype=str, keep_default_na=False)
    lab = read_table(labels, required=[*KEY, *LABEL_GROUPS], dtype=str, keep_default_na=False)
    merged = fp.merge(lab, on=KEY, how="left", indicator=True)
    for r in merged[merged["_merge"] == "left_only"].itertuples():
        errors.append(
            {"file": f"{paths.name}: {r.PatientID} {r.View}", "reason": "no row in the labels table; skipped"}
        )
    merged = merged[merged["_merge"] == "both"].drop(columns="_merge")
    merged["set"], merged["labels_file"], merged["paths_file"] = name, labels.name, paths.name
    return merged


def load_bcs_dbt(
    root: str | os.PathLike,
    official_split: bool = False,
    actionable: str = "benign",
    normal_slice: float = 0.5,
    slice_dir: str | os.PathLike | None = None,
    path_column: str = "descriptive_path",
) -> AdapterResult:
    """Read BCS-DBT as 2-D images: one per slice that carries a box, and one per view without boxes.

    Label (``label_source`` column): ``Cancer`` = 1; ``Benign`` = 0; ``Normal`` = 0; ``Actionable``
    (recalled, not biopsied) = 0, or excluded with ``actionable="exclude"``. Lesions: one per box, on the
    image of its ``Slice`` (a 0-based frame index, as the Duke reference code reads it), pathology from
    ``Class`` (cancer / benign), type ``mass`` (``AD`` = 1 marks an architectural distortion, kept as a
    mass with ``architectural_distortion`` True). A view without boxes gives the slice at
    ``normal_slice`` of its depth (default 0.5: the central slice, ``frames // 2``).

    Orientation: the derived slice is turned into the frame the boxes are given in (module docstring).

    Derived slices are single-frame DICOMs (:mod:`.dbt_slices`) in ``slice_dir`` (default:
    :func:`~.derived_images.derived_dir`), made once and reused while newer than their volume. Patient:
    ``PatientID``. With ``official_split`` the set gives ``train`` / ``val`` / ``test``.

    Not verified without the real files: that ``Slice`` counts from 0; the orientation test on real
    volumes; that every volume decodes with pydicom's plugins (TCIA's are compressed).

    Raises:
        FileNotFoundError: no file-paths and labels tables in ``root`` or one folder down.
        DatasetTableError: a table cannot be read or lacks a needed column.
        ValueError: ``actionable`` is not "benign" or "exclude".
    """
    if actionable not in ("benign", "exclude"):
        raise ValueError(f"actionable must be 'benign' or 'exclude', not {actionable!r}")
    root = Path(root)
    tables = find_tables(root)
    errors: list[dict[str, str]] = []
    sets = [t for t in (_read_set(tables, name, path_column, errors) for name in SPLITS) if t is not None]
    if not sets:
        raise FileNotFoundError(f"{root}: no BCS-DBT file-paths and labels tables here or one folder down")
    views = pd.concat(sets, ignore_index=True)
    boxes = _read_boxes(tables, errors)
    out_dir = derived_dir("bcs-dbt", root, slice_dir)
    settings = _Settings(root, out_dir, normal_slice, official_split, actionable, path_column)
    images: list[dict[str, Any]] = []
    lesions: list[dict[str, Any]] = []
    for row in views.to_dict("records"):
        made = _view(row, boxes, settings, errors)
        images += made[0]
        lesions += made[1]
    return AdapterResult.from_rows(images, lesions, errors, truth_rows=len(views))


@dataclass(frozen=True)
class _Settings:
    """What every view of one :func:`load_bcs_dbt` call shares (its arguments, the slice folder)."""

    root: Path
    out_dir: Path
    normal_slice: float
    official: bool
    actionable: str
    path_column: str

    @property
    def source(self) -> str:
        """The ``label_source`` written on every image."""
        return f"bcs-dbt: Cancer=1; Benign, Normal=0; Actionable={'0' if self.actionable == 'benign' else 'excluded'}"


def _view(row: dict, boxes: dict, settings: _Settings, errors: list) -> tuple[list[dict], list[dict]]:
    """The images and lesions of one table row (a view); none, reported, for an unknown label, a missing
    or unreadable volume, or a bad ``View`` (an excluded ``Actionable`` view: none, not reported)."""
    group = _group(pd.Series(row))
    if group is None:
        values = {g: row[g] for g in LABEL_GROUPS}
        where = f"{row['labels_file']}: {row['PatientID']} {row['View']}"
        errors.append({"file": where, "reason": f"unknown label value(s) {values}: need one 1 among them; skipped"})
        return [], []
    if group == "actionable" and settings.actionable == "exclude":
        return [], []
    volume = _volume(settings.root, row[settings.path_column])
    if volume is None:
        listed = f"listed in {row['paths_file']} but not found; skipped"
        errors.append({"file": f"{settings.root / row[settings.path_column]}", "reason": listed})
        return [], []
    try:
        return _view_images(row, group, volume, boxes, settings, errors)
    except MammogramError as err:
        errors.append({"file": str(volume), "reason": f"{err.problem}; skipped"})
        return [], []


def _read_boxes(tables: dict, errors: list[dict[str, str]]) -> dict[tuple[str, str, str], list[dict]]:
    """Boxes of every set by (PatientID, StudyUID, View); rows with an unknown ``Class`` are reported."""
    out: dict[tuple[str, str, str], list[dict]] = {}
    for name in SPLITS:
        path = tables.get(("boxes", name))
        if path is None:
            continue
        table = read_table(path, required=BOX_COLUMNS, dtype=str, keep_default_na=False)
        for r in table.to_dict("records"):
            problem = None
            if str(r["Class"]).strip().lower() not in _PATHOLOGY:
                problem = f"unknown Class {r['Class']!r}"
            try:
                r["X"], r["Y"], r["Width"], r["Height"] = (float(r[k]) for k in ("X", "Y", "Width", "Height"))
            except ValueError:
                problem = problem or "X, Y, Width or Height is not a number"
            if problem:
                where = f"{path.name}: {r['PatientID']} {r['View']}"
                errors.append({"file": where, "reason": f"{problem}; box skipped"})
                continue
            out.setdefault((r["PatientID"], r["StudyUID"], r["View"]), []).append({**r, "file": path.name})
    return out


def _view_images(
    row: dict, group: str, volume: Path, boxes: dict, settings: _Settings, errors: list
) -> tuple[list[dict], list[dict]]:
    """The 2-D images (and their lesions) of one view: one per boxed slice, else the default slice."""
    frames = frame_count(volume)
    view_code = str(row["View"]).strip().lower()
    if view_code not in ("lcc", "lmlo", "rcc", "rmlo"):
        raise MammogramError(volume, f"View {row['View']!r} is not lcc, lmlo, rcc or rmlo")
    side, view = view_code[:1].upper(), view_code[1:].upper()
    study = hashlib.sha1(str(row["StudyUID"]).encode()).hexdigest()[:8]
    by_slice = _boxes_by_slice(row, boxes, frames, errors)
    if not by_slice:
        by_slice = {min(frames - 1, max(0, int(frames * settings.normal_slice))): []}
    images, lesions = [], []
    for index, slice_boxes in sorted(by_slice.items()):
        image_id = safe_name(f"{row['PatientID']}_{study}_{view_code}_s{index:03d}")
        out = settings.out_dir / f"{image_id}.dcm"
        turned = _slice_file(volume, index, out, side, view)
        images.append(
            {
                "image_id": image_id,
                "image": str(out),
                "patient_id": str(row["PatientID"]),
                "laterality": side,
                "view": view,
                "label": int(group == "cancer"),
                "dataset": "bcs-dbt",
                "split": SPLITS[row["set"]] if settings.official else "",
                "label_source": settings.source,
                "group": group,
                "source_volume": str(volume),
                "slice": index,
                "slices": frames,
                "turned": turned,
            }
        )
        lesions += [_box_lesion(image_id, out, box) for box in slice_boxes]
    return images, lesions


def _boxes_by_slice(row: dict, boxes: dict, frames: int, errors: list) -> dict[int, list[dict]]:
    """The view's boxes by their 0-based ``Slice``; a box outside the volume's ``frames`` is reported."""
    by_slice: dict[int, list[dict]] = {}
    for box in boxes.get((row["PatientID"], row["StudyUID"], row["View"]), []):
        try:
            index = int(float(box["Slice"]))
        except ValueError:
            index = -1
        if not 0 <= index < frames:
            errors.append(
                {
                    "file": f"{box['file']}: {row['PatientID']} {row['View']}",
                    "reason": f"Slice {box['Slice']!r} outside the volume's {frames} frames; box skipped",
                }
            )
            continue
        by_slice.setdefault(index, []).append(box)
    return by_slice


def _box_lesion(image_id: str, out: Path, box: dict) -> dict[str, Any]:
    """The lesion row of one box on its derived slice ``out`` (``AD`` = 1: an architectural distortion)."""
    x, y, w, h = (float(box[k]) for k in ("X", "Y", "Width", "Height"))
    return {
        "image_id": image_id,
        "image": str(out),
        "lesion_type": "mass",
        "pathology": _PATHOLOGY[str(box["Class"]).strip().lower()],
        "mask": "",
        **sized_box_geometry(top=y, left=x, height=h, width=w),
        "architectural_distortion": str(box.get("AD", "")).strip() in ("1", "1.0", "True"),
    }
