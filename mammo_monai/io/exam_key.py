"""Which exam, patient and breast an image belongs to, as keys that never hold an identifier.

An exam is one study of one woman (both breasts, every view); a breast is one side of an exam. The
keys are salted SHA-256 digests (HMAC, :data:`KEY_DIGITS` hex digits) of what identifies the group, so
images of one study share a key while the StudyInstanceUID, the PatientID or a name never reaches a
table. The salt is fixed, so keys agree between runs; a site that shares outputs sets its own secret
salt in ``MAMMO_MONAI_KEY_SALT`` so that a short patient number cannot be recovered by trying them all.

Where the key comes from, first match wins:

1. DICOM whose PatientID names a side and a view (CBIS-DDSM's ``Mass-Test_P_00173_LEFT_CC``: the ID,
   and the StudyInstanceUID with it, is per view): the case in the ID, as for file names below.
2. DICOM StudyInstanceUID (the exam) and PatientID (the patient; the study when absent).
3. A file or folder name pattern (:func:`name_group`): CBIS-DDSM ``P_00001_LEFT_CC``, INbreast
   ``<id>_<patient hash>_MG_R_ML``, mini-MIAS ``mdb001`` (films 2n-1 and 2n are one woman), and
   ``<exam>_<L|R>_<view>`` (NYU's ``0_L-CC.png``, ``patient12_R_MLO.png``): one exam per case / prefix.
   A name that says its exam comes before the folder, because NYU's layout keeps many exams in one folder.
4. The folder: the files of one folder (its parent) are one exam (``patient/exam/L_CC.png``).
5. A file with no folder at all (a bare relative name's folder is the working directory, so in practice
   never): an exam of its own.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Any, TypeVar

from mammo_monai.io.naming import VIEWS, parse_name

KEY_SALT_ENV = "MAMMO_MONAI_KEY_SALT"
#: the installation's own random salt, made on first use, when the site sets none
SALT_FILE = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "mammo-monai" / "key_salt"
KEY_DIGITS = 16
#: ``grouped_by`` values: how an image's exam was found.
BY_DICOM_STUDY, BY_DICOM_CASE, BY_NAME, BY_FOLDER, BY_FILE = (
    "dicom study",
    "dicom case name",
    "file name",
    "folder",
    "file",
)

_VIEW = "|".join(sorted(set(VIEWS) - {"ID", "AT"}, key=len, reverse=True))  # longest first: MLO before ML
_SIDE_VIEW = rf"(?:L|R|LEFT|RIGHT)[_\-.\s]*(?:{_VIEW})"
_NAME_PATTERNS = (
    ("cbis", re.compile(r"(?:^|[_\-])(P_\d+)_(?:LEFT|RIGHT)_(?:CC|MLO)(?:$|[_\-.])", re.I)),
    ("inbreast", re.compile(r"^\d+_([0-9a-f]{16})_MG_[LR]_", re.I)),
    ("mias", re.compile(r"^mdb(\d{3})$", re.I)),
    ("exam_side_view", re.compile(rf"^(.+?)[_\-.\s]+{_SIDE_VIEW}$", re.I)),
)

T = TypeVar("T")


def hashed_key(value: str, kind: str) -> str:
    """A salted SHA-256 (HMAC) of ``value``, :data:`KEY_DIGITS` hex digits; "" for an empty value.

    Args:
        value: what identifies the group (a UID, an ID, a case name, a path); never written itself.
        kind: what the value is ("study", "patient", "name", "file"), so equal text of two kinds differs.
    """
    if not value:
        return ""
    salt = os.environ.get(KEY_SALT_ENV) or _installation_salt()
    return hmac.new(salt.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:KEY_DIGITS]


@functools.cache
def _installation_salt() -> str:
    """A random salt kept in :data:`SALT_FILE` (mode 0600), so that nobody can recompute the keys of short
    patient numbers from a salt published with the code; keys are then stable on this installation only.
    Where the file cannot be kept, a salt of this process alone (keys stable within one run)."""
    try:
        return SALT_FILE.read_text().strip() or secrets.token_hex(32)
    except FileNotFoundError:
        pass
    except OSError:
        return secrets.token_hex(32)
    salt = secrets.token_hex(32)
    try:
        SALT_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(SALT_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # another process may win the race
        with os.fdopen(fd, "w") as f:
            f.write(salt)
        return salt
    except FileExistsError:
        return SALT_FILE.read_text().strip() or salt
    except OSError:
        return salt


def _group_of(name: str) -> str:
    for scheme, pattern in _NAME_PATTERNS:
        m = pattern.search(name)
        if m:
            if scheme == "cbis":
                return f"cbis:{m.group(1).upper()}"
            if scheme == "mias":
                return f"mias:{(int(m.group(1)) + 1) // 2}"
            return f"{scheme}:{m.group(1).lower()}"
    return ""


def name_group(path: str | os.PathLike, levels: int = 4) -> str:
    """The exam a file's name (then its folders', nearest first) names, as plain text ("" if none).

    The text may hold a case name: hash it (:func:`hashed_key`) before it goes anywhere. Folders are
    searched because TCIA's CBIS-DDSM layout names the file ``1-1.dcm`` and the case three folders up.
    An ``<exam>_<side>_<view>`` prefix counts within its folder (NYU numbers the exams of each folder
    from 0); CBIS-DDSM, INbreast and MIAS names are unique in their dataset.
    """
    p = Path(path)
    for part in [p, *list(p.parents)[:levels]]:
        group = _group_of(part.stem if part == p else part.name)
        if group.startswith("exam_side_view:"):
            return f"{os.path.abspath(part.parent)}/{group}"
        if group:
            return group
    return ""


def image_keys(path: str | os.PathLike, patient_id: str = "", study_uid: str = "") -> dict[str, str]:
    """The hashed exam and patient keys of one image and how they were found (module docstring).

    Args:
        path: the image file.
        patient_id: the DICOM PatientID ("" for files without a header).
        study_uid: the DICOM StudyInstanceUID ("" for files without a header).

    Returns:
        ``{"exam_key", "patient_key", "grouped_by"}``; ``grouped_by`` is one of :data:`BY_DICOM_STUDY`,
        :data:`BY_DICOM_CASE`, :data:`BY_NAME`, :data:`BY_FOLDER`, :data:`BY_FILE`.
    """
    patient_id, study_uid = str(patient_id or "").strip(), str(study_uid or "").strip()
    side, view = parse_name(patient_id) if patient_id else ("", "")
    case = _group_of(patient_id) if side and view else ""
    if case:
        key = hashed_key(case, "name")
        return {"exam_key": key, "patient_key": key, "grouped_by": BY_DICOM_CASE}
    if study_uid:
        patient = hashed_key(patient_id, "patient") if patient_id else hashed_key(study_uid, "study")
        return {"exam_key": hashed_key(study_uid, "study"), "patient_key": patient, "grouped_by": BY_DICOM_STUDY}
    group = name_group(path)
    if group:
        key = hashed_key(group, "name")
        return {"exam_key": key, "patient_key": key, "grouped_by": BY_NAME}
    folder = os.path.dirname(os.path.abspath(path))
    if folder and folder != os.path.dirname(folder):  # any folder but the filesystem's root
        key = hashed_key(folder, "folder")
        return {"exam_key": key, "patient_key": hashed_key(patient_id, "patient") or key, "grouped_by": BY_FOLDER}
    key = hashed_key(os.path.abspath(path), "file")
    return {"exam_key": key, "patient_key": hashed_key(patient_id, "patient") or key, "grouped_by": BY_FILE}


def breast_key(exam: T, laterality: Any) -> T:
    """The breast of an image: its exam (or patient) key and its side, ``<exam>_<L|R>``.

    The one place the key is spelled: ``predict`` groups by it, and ``evaluate``, validation's pF1 and the
    manifests' ``exam`` column (patient + laterality) build it here. Works on strings and on pandas Series.
    """
    if hasattr(exam, "astype"):
        return exam.astype(str) + "_" + (laterality.astype(str) if hasattr(laterality, "astype") else str(laterality))
    return f"{exam}_{laterality}"  # type: ignore[return-value]


def table_breast_key(table: Any, patient: str = "patient_id", laterality: str = "laterality") -> Any:
    """The breast of each row of a manifest table (pandas): its ``exam`` column, else patient + laterality
    (:func:`breast_key`; a missing side is ""). ``evaluate``, validation's pF1 and the segmentation records
    group by it."""
    if "exam" in table.columns:
        return table["exam"].astype(str)
    return breast_key(table[patient].astype(str), table[laterality].fillna(""))


def image_group(meta: dict[str, Any], path: str | os.PathLike, laterality: str) -> dict[str, str]:
    """``predict``'s keys of one loaded image: ``patient``, ``exam``, ``breast`` and ``grouped_by``, from the
    reader's keys in ``meta`` (:func:`image_keys` of its header), else the file's own (:func:`image_keys`)."""
    keys = meta if meta.get("exam_key") else image_keys(path)
    return {
        "patient": keys["patient_key"],
        "exam": keys["exam_key"],
        "breast": breast_key(keys["exam_key"], laterality),
        "grouped_by": keys["grouped_by"],
    }
