"""OMI-DB (OPTIMAM Mammography Image Database): per-client JSON and DICOM trees, for users granted access.

Layout read (as the ``omidb`` package documents it): a folder holding ``data/`` and ``images/`` (found
at ``root`` or up to three folders down, e.g. ``image_db/sharing/standard``). ``data/<client>/`` holds
``imagedb_<client>.json`` (``STUDIES`` -> study UID -> ``StudyDate``, ``EpisodeID`` and series UID ->
image UID -> marks, each with ``MarkID``, ``X1``, ``Y1``, ``X2``, ``Y2``, ``Mass``, ``WithCalcification``,
``SuspiciousCalcifications``, ``LinkedNBSSLesionNumber``, ...), ``nbss_<client>.json`` (episode ID ->
``EpisodeType`` and events ``SCREENING``, ``ASSESSMENT``, ``BIOPSYWIDE``, ``BIOPSYFINE``, ``SURGERY``,
``CLINICAL``, each with ``left_opinion`` / ``right_opinion``: OB, OM, ON, OS, OU) and
``<study>/<image>.json`` (the DICOM header in the DICOM JSON model); ``images/<client>/<study>/<image>.dcm``.
Quirks handled: upper-case ``IMAGEDB_`` / ``NBSS_`` names, image JSONs named ``<image>.dcm.json``.

The ``omidb`` package (pre-alpha, with loguru and matplotlib) is not used: the few keys needed are read
directly, and its event-date linking of studies without an ``EpisodeID`` is not reproduced (such studies
are reported and skipped). Source: the ``omidb`` package's documentation (``structure.rst``) and parser.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom

from mammo_monai.data.adapters.base import AdapterResult, safe_name
from mammo_monai.data.adapters.geometry import pixel_box_geometry

IUID = re.compile(r"^\d+(\.\d+)+$")
PATHOLOGY_EVENTS = ("SURGERY", "BIOPSYWIDE", "BIOPSYFINE")
SIDE_OPINIONS = {"OB", "OM", "ON", "OS", "OU"}
LABEL_SOURCE = "omi-db: NBSS surgery/biopsy opinion of the image's side: OM = 1, else 0"
_TAGS = {"laterality": "00200062", "view": "00185101", "presentation": "00080068"}


def find_db(root: Path) -> Path | None:
    """The folder holding ``data/`` and ``images/``: ``root`` or up to three folders below it."""
    for pattern in ("", "*", "*/*", "*/*/*"):
        for cand in sorted(root.glob(pattern)) if pattern else [root]:
            if (cand / "data").is_dir() and (cand / "images").is_dir():
                return cand
    return None


def _client_json(folder: Path, prefix: str) -> Path | None:
    for name in (f"{prefix}_{folder.name}.json", f"{prefix.upper()}_{folder.name}.json"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_json(path: Path, errors: list[dict[str, str]], what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        errors.append(
            {
                "file": str(path),
                "reason": f"cannot be read as JSON ({type(err).__name__}: {str(err).splitlines()[0]}) (the whole {what}); skipped",
            }
        )
        return None


def _attributes(data: Path, images: Path, client: str, study: str, image: str) -> dict[str, str]:
    """Laterality, view and presentation intent from the image's JSON header, else from the DICOM."""
    for path in (data / client / study / f"{image}.json", data / client / study / f"{image}.dcm.json"):
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
                return {k: str((doc.get(tag, {}).get("Value") or [""])[0]).upper() for k, tag in _TAGS.items()}
            except (OSError, ValueError, AttributeError):
                break
    try:
        ds = pydicom.dcmread(images / client / study / f"{image}.dcm", stop_before_pixels=True)
    except Exception:
        return {k: "" for k in _TAGS}
    keys = {"laterality": "ImageLaterality", "view": "ViewPosition", "presentation": "PresentationIntentType"}
    return {k: str(ds.get(v, "") or "").upper() for k, v in keys.items()}


def side_label(episode: dict[str, Any], side: str) -> int | str:
    """1 when a surgery or biopsy event of ``episode`` gives ``side`` ("L"/"R") the opinion OM, else 0;
    the unknown opinion (a string) when one is not an NBSS side opinion."""
    key = "left_opinion" if side == "L" else "right_opinion"
    opinions = [str(ev.get(key) or "") for name in PATHOLOGY_EVENTS if isinstance(ev := episode.get(name), dict)]
    bad = [o for o in opinions if o and o not in SIDE_OPINIONS]
    return bad[0] if bad else int("OM" in opinions)


def _lesion(mark: dict[str, Any], malignant: bool) -> dict[str, Any] | None:
    kind = (
        "mass"
        if mark.get("Mass")
        else "calc"
        if mark.get("WithCalcification") or mark.get("SuspiciousCalcifications")
        else None
    )
    if kind is None:
        return None
    geometry = pixel_box_geometry(row0=mark["Y1"], col0=mark["X1"], row1=mark["Y2"], col1=mark["X2"])
    return {
        "lesion_type": kind,
        "pathology": "malignant" if malignant else "benign",
        "mask": "",
        "mark_id": str(mark.get("MarkID", "")),
        **geometry,
    }


def load_omi_db(root: str | os.PathLike, presentation_only: bool = True) -> AdapterResult:
    """Read an OMI-DB download (or a part of it).

    Label (``label_source`` column), per breast: 1 when a ``SURGERY``, ``BIOPSYWIDE`` or ``BIOPSYFINE``
    event of the study's NBSS episode gives the image's side the opinion ``OM`` (malignant), else 0
    (benign ``OB``, normal, or an episode without such events; interval-cancer episodes follow the same
    rule). An opinion outside OB/OM/ON/OS/OU is an unknown label: the image is reported and skipped.
    Lesions: one per mark that is a ``Mass`` (mass) or has calcifications (calc), its box from the
    corner pixels ``X1, Y1, X2, Y2`` (columns, rows from the top; either order; the larger of ``X1, X2``
    and of ``Y1, Y2`` the last pixel inside, so the manifest's half-open box ends one past it), pathology = the
    breast's label; marks of other findings are left out. Patient: the client folder name. OMI-DB has no
    split. With ``presentation_only`` "FOR PROCESSING" images are left out (counted in one line).

    Not verified without the real files: that the corners are pixels inside the box (read so: a box
    can then be one pixel too large, never too small), that ``Y`` counts rows from the top (the ``omidb`` package calls
    the corners lower-left and upper-right), and the image JSON's exact keys (read: the DICOM JSON model's
    tag keys, as ``omidb``'s example reads ``00080070``).

    Raises:
        FileNotFoundError: no folder with ``data/`` and ``images/`` at ``root`` or three folders down.
    """
    root = Path(root)
    db = find_db(root)
    if db is None:
        raise FileNotFoundError(f"{root}: no OMI-DB 'data' and 'images' folders here or three folders down")
    read = _Read(db / "data", db / "images", presentation_only)
    images: list[dict[str, Any]] = []
    lesions: list[dict[str, Any]] = []
    for client in sorted(p for p in read.data.iterdir() if p.is_dir()):
        made = _client(client, read)
        images += made[0]
        lesions += made[1]
    if read.counts["processing"]:
        read.errors.append(
            {
                "file": str(read.data),
                "reason": f"{read.counts['processing']} 'FOR PROCESSING' images left out (presentation_only)",
            }
        )
    return AdapterResult.from_rows(images, lesions, read.errors, truth_rows=read.counts["studies"])


@dataclass
class _Read:
    """What every client of one :func:`load_omi_db` call shares: the folders, the option, the problems
    found so far and the counts (studies read, "FOR PROCESSING" images left out)."""

    data: Path
    image_dir: Path
    presentation_only: bool
    errors: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"processing": 0, "studies": 0})


def _client(client: Path, read: _Read) -> tuple[list[dict], list[dict]]:
    """Image and lesion rows of one client folder; none (reported) when its JSON files are missing or
    malformed."""
    errors = read.errors
    imagedb_path, nbss_path = _client_json(client, "imagedb"), _client_json(client, "nbss")
    if imagedb_path is None or nbss_path is None:
        missing = "imagedb" if imagedb_path is None else "nbss"
        errors.append({"file": str(client), "reason": f"no {missing}_{client.name}.json (the whole client); skipped"})
        return [], []
    imagedb, nbss = _load_json(imagedb_path, errors, "client"), _load_json(nbss_path, errors, "client")
    if imagedb is None or nbss is None:
        return [], []
    if not isinstance(nbss, dict):
        errors.append({"file": str(nbss_path), "reason": "not a JSON object of episodes (the whole client); skipped"})
        return [], []
    if not isinstance(imagedb, dict) or not isinstance(imagedb.get("STUDIES"), dict):
        errors.append({"file": str(imagedb_path), "reason": "missing key 'STUDIES' (the whole client); skipped"})
        return [], []
    images, lesions = [], []
    for study_id, study in imagedb["STUDIES"].items():
        read.counts["studies"] += 1
        if not isinstance(study, dict):
            errors.append({"file": str(imagedb_path), "reason": "a study entry is not a JSON object; skipped"})
            continue
        made = _study(client.name, study_id, study, nbss, imagedb_path, read)
        images += made[0]
        lesions += made[1]
    return images, lesions


def _study(
    client: str, study_id: str, study: dict, nbss: dict, imagedb_path: Path, read: _Read
) -> tuple[list[dict], list[dict]]:
    """Image and lesion rows of one study; none (reported) when its NBSS episode is missing."""
    episode_id = str(study.get("EpisodeID") or "")
    episode = nbss.get(episode_id)
    where = f"{imagedb_path.name}: study {safe_name(study_id)[-12:]}"
    if not isinstance(episode, dict):
        read.errors.append(
            {
                "file": where,
                "reason": f"episode {episode_id or '(none)'!r} not in the NBSS file (the whole study); skipped",
            }
        )
        return [], []
    images, lesions = [], []
    for series_id, series in study.items():
        if not (IUID.match(series_id) and isinstance(series, dict)):
            continue
        for image_uid, marks in series.items():
            if not IUID.match(image_uid):
                continue
            image = _image(client, study_id, image_uid, episode_id, episode, imagedb_path, read)
            if image is not None:
                images.append(image)
                lesions += _mark_lesions(marks, image, imagedb_path, read.errors)
    return images, lesions


def _image(
    client: str, study_id: str, image_uid: str, episode_id: str, episode: dict, imagedb_path: Path, read: _Read
) -> dict[str, Any] | None:
    """One image's row; None when its file is missing (reported), it is "FOR PROCESSING" (counted) or
    its side's opinion is unknown (reported)."""
    path = read.image_dir / client / study_id / f"{image_uid}.dcm"
    if not path.is_file():
        read.errors.append({"file": str(path), "reason": f"listed in {imagedb_path.name} but not found; skipped"})
        return None
    attrs = _attributes(read.data, read.image_dir, client, study_id, image_uid)
    if read.presentation_only and attrs["presentation"] == "FOR PROCESSING":
        read.counts["processing"] += 1
        return None
    label = side_label(episode, attrs["laterality"])
    if isinstance(label, str):
        read.errors.append(
            {
                "file": f"{client}/nbss episode {episode_id}",
                "reason": f"unknown side opinion {label!r} for image {path.name}; skipped",
            }
        )
        return None
    return {
        "image_id": f"{client}_{hashlib.sha1(image_uid.encode()).hexdigest()[:10]}",
        "image": str(path),
        "patient_id": client,
        "laterality": attrs["laterality"] if attrs["laterality"] in ("L", "R") else "",
        "view": attrs["view"],
        "label": label,
        "dataset": "omi-db",
        "split": "",
        "label_source": LABEL_SOURCE,
        "episode_type": str(episode.get("EpisodeType") or ""),
    }


def _mark_lesions(marks: Any, image: dict[str, Any], imagedb_path: Path, errors: list) -> list[dict[str, Any]]:
    """The lesion rows of one image's marks (a mark without usable corners is reported and skipped)."""
    lesions = []
    for mark in (marks or {}).values() if isinstance(marks, dict) else []:
        try:
            row = _lesion(mark, bool(image["label"]))
        except (KeyError, TypeError, ValueError):
            mark_id = mark.get("MarkID", "?") if isinstance(mark, dict) else "?"
            errors.append(
                {"file": f"{imagedb_path.name}: mark {mark_id}", "reason": "no usable X1, Y1, X2, Y2; lesion skipped"}
            )
            continue
        if row is not None:
            lesions.append({"image_id": image["image_id"], "image": image["image"], **row})
    return lesions
