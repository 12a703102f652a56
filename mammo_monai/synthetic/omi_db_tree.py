"""A miniature OMI-DB (OPTIMAM) in the layout the ``omidb`` package documents: ``image_db/sharing/standard``
holding ``data/<client>/`` (``imagedb_<client>.json``, ``nbss_<client>.json``, ``<study>/<image>.json``)
and ``images/<client>/<study>/<image>.dcm``.

Quirks kept: client folders ``optm<N>`` and ``demd<N>``; an upper-case ``NBSS_<client>.json``; image
JSONs named ``<image>.dcm.json``; a "FOR PROCESSING" image beside its presentation twin; marks given by
their lower-left (X1, Y1) and upper-right (X2, Y2) corners; a normal screening episode and a malignant
one (surgery opinion OM on one side, OB on no side) per malignant client.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mammo_monai.synthetic.dicom_writer import build_dataset, make_uid, save_dataset
from mammo_monai.synthetic.view_render import render_view

VIEWS = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))


def _write_image(
    db: Path, client: str, study: str, uid: str, img: np.ndarray, side: str, view: str, intent: str, json_name: str
) -> None:
    ds = build_dataset(
        (img * 4095).astype(np.uint16), laterality=side, laterality_tag="ImageLaterality", sop_uid=uid, study_uid=study
    )
    ds.ViewPosition, ds.PresentationIntentType = view, intent
    ds.BitsStored, ds.HighBit = 12, 11
    path = db / "images" / client / study / f"{uid}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ds.to_json_dict()
    header.pop("7FE00010", None)  # the header only, as OMI-DB's JSONs hold
    (db / "data" / client / study).mkdir(parents=True, exist_ok=True)
    (db / "data" / client / study / json_name).write_text(json.dumps(header))
    save_dataset(ds, path)


def _episode(malignant_side: str | None) -> dict[str, Any]:
    if malignant_side is None:
        return {"EpisodeType": "R", "EpisodeIsClosed": "Y", "SCREENING": {"left_opinion": "ON", "right_opinion": "ON"}}
    other = "R" if malignant_side == "L" else "L"
    opinions = {f"{'left' if s == 'L' else 'right'}_opinion": o for s, o in ((malignant_side, "OM"), (other, "ON"))}
    return {
        "EpisodeType": "F",
        "EpisodeIsClosed": "Y",
        "SCREENING": {"left_opinion": "OS", "right_opinion": "ON"},
        "ASSESSMENT": dict(opinions),
        "SURGERY": dict(opinions),
    }


def _marks(drawn: list) -> dict[str, dict[str, Any]]:
    """The imagedb marks of one image's drawn lesions: corners ``X1, Y1`` (lower left) and ``X2, Y2``
    (upper right), as the ``omidb`` package names them; each the corner's own pixel (the box's last row
    and column are ``Y1`` and ``X2``)."""
    marks = {}
    for m, d in enumerate(drawn):
        top, left, h, w = d.box()
        marks[str(m)] = {
            "MarkID": m + 1,
            "X1": left,
            "Y1": top + h - 1,
            "X2": left + w - 1,
            "Y2": top,
            "Mass": d.kind == "mass" or None,
            "WithCalcification": d.kind != "mass" or None,
            "LinkedNBSSLesionNumber": "1",
            "Conspicuity": "Obvious",
        }
    return marks


def make_omi_db_tree(
    root: str | os.PathLike, clients: int = 4, seed: int = 0, size: tuple[int, int] = (96, 72)
) -> dict[str, Any]:
    """Write the miniature; returns the truth: every presentation image (client, side, view, label, path)
    and every mark's box (top, left, height, width) in the image's pixels with its type and pathology."""
    db = Path(root) / "image_db" / "sharing" / "standard"
    rng = np.random.default_rng(seed)
    truth: dict[str, list] = {"images": [], "lesions": []}
    for c in range(clients):
        client = f"demd{c + 1}" if c == clients - 1 else f"optm{c + 1}"
        malignant_side = ("L", "R")[c % 2] if c % 2 == 0 or c == 1 else None
        nbss, studies = {}, {}
        for e, side_m in enumerate([None, malignant_side] if malignant_side else [None]):
            study = make_uid("omi", seed, c, e)
            nbss[str(e + 1)] = _episode(side_m)
            series = make_uid("omi-series", seed, c, e)
            entries: dict[str, Any] = {}
            for side, view in VIEWS:
                lesion = [("mass" if c % 3 else "calcification", True)] if side == side_m else []
                img, drawn = render_view(rng, size, side, view, lesion)
                uid = make_uid("omi-image", seed, c, e, side, view)
                json_name = f"{uid}.dcm.json" if c == 1 else f"{uid}.json"
                _write_image(db, client, study, uid, img, side, view, "FOR PRESENTATION", json_name)
                marks = _marks(drawn)
                truth["lesions"] += [
                    {
                        "client": client,
                        "side": side,
                        "view": view,
                        "box": d.box(),
                        "type": "mass" if d.kind == "mass" else "calc",
                        "pathology": "malignant",
                    }
                    for d in drawn
                ]
                entries[uid] = marks or None
                truth["images"].append(
                    {
                        "client": client,
                        "side": side,
                        "view": view,
                        "label": int(side == side_m),
                        "path": str(db / "images" / client / study / f"{uid}.dcm"),
                    }
                )
                if e == 0 and side == "L" and view == "CC":
                    raw = make_uid("omi-raw", seed, c)
                    _write_image(db, client, study, raw, img, side, view, "FOR PROCESSING", f"{raw}.json")
                    entries[raw] = None
            studies[study] = {"StudyDate": f"2015010{e + 1}", "EpisodeID": str(e + 1), series: entries}
        folder = db / "data" / client
        (folder / f"imagedb_{client}.json").write_text(json.dumps({"Site": "adde", "STUDIES": studies}))
        nbss_name = f"NBSS_{client}.json" if c == 2 else f"nbss_{client}.json"
        (folder / nbss_name).write_text(json.dumps(nbss))
    return truth
