"""A CBIS-DDSM-like tree: full-field DICOMs, ROI masks and crops in the current TCIA layout, plus the
four description CSVs with the real column names and quirks."""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from mammo_monai.io.atomic import atomic_path
from mammo_monai.parallel import run_parallel
from mammo_monai.synthetic.dicom_writer import build_dataset, make_uid, save_dataset
from mammo_monai.synthetic.film import add_film_artefacts
from mammo_monai.synthetic.phantom import Lesion, breast_tissue, draw_lesion
from mammo_monai.synthetic.site import SiteProfile

COMMON = ["patient_id", "{density}", "left or right breast", "image view", "abnormality id", "abnormality type"]
TAIL = ["assessment", "pathology", "subtlety", "image file path", "cropped image file path", "ROI mask file path"]
HEADERS = {
    "mass": [*COMMON, "mass shape", "mass margins", *TAIL],
    "calcification": [*COMMON, "calc type", "calc distribution", *TAIL],
}
DENSITY_COLUMN = {"mass": "breast_density", "calcification": "breast density"}  # the real quirk
CSV_NAMES = {
    ("mass", "Training"): "mass_case_description_train_set.csv",
    ("mass", "Test"): "mass_case_description_test_set.csv",
    ("calcification", "Training"): "calc_case_description_train_set.csv",
    ("calcification", "Test"): "calc_case_description_test_set.csv",
}
DESCRIPTORS = {  # (malignant look?) -> BI-RADS descriptors drawn for the CSV
    ("mass", True): (["IRREGULAR", "ARCHITECTURAL_DISTORTION", "LOBULATED"], ["SPICULATED", "ILL_DEFINED"]),
    ("mass", False): (["ROUND", "OVAL"], ["CIRCUMSCRIBED", "OBSCURED"]),
    ("calcification", True): (["PLEOMORPHIC", "FINE_LINEAR_BRANCHING"], ["CLUSTERED", "LINEAR", "SEGMENTAL"]),
    ("calcification", False): (["COARSE", "ROUND_AND_REGULAR", "LUCENT_CENTER"], ["CLUSTERED", "REGIONAL"]),
}


@dataclass
class SynthOptions:
    """Knobs of the generator. ``concordance`` is the chance that a lesion looks like its pathology
    (malignant: spiculated mass / fine pleomorphic calcifications); the rest look like the other
    class, which caps the attainable image AUC near 0.93 and keeps the task honest.
    ``p_duplicate_row`` is the chance that a truth row is written twice in its CSV (an error in a
    table that the adapter must report, not count twice). ``p_both_tables`` is the chance that a breast also carries a lesion of the other type and its
    films are listed in both tables, under a ``Mass-`` and a ``Calc-`` folder (as 71 real CBIS-DDSM
    films are); ``p_split_differs`` the chance that such a patient's second table puts them in the
    other official part (as for 31 real patients)."""

    size: tuple[int, int] = (1152, 896)
    concordance: float = 0.93
    p_malignant: float = 0.45
    p_monochrome1: float = 0.15
    p_window: float = 0.3
    p_rle: float = 0.25
    p_mask_off: float = 0.1
    p_film_artefacts: float = 0.3  # digitised-film border, garbage rows, labels, rulers, edge strips (film.py)
    p_both_tables: float = 0.05
    p_split_differs: float = 0.3
    p_duplicate_row: float = 0.0
    lesion_scale: float = 1.0  # lesions (size and fine structure) this many times their size at this resolution
    site: SiteProfile = SiteProfile()  # the vendor's intensity profile and lesion look (site.py); default: none


def burn_label(
    pixels: np.ndarray, region: np.ndarray, text: str, chest_wall_left: bool, rng: np.random.Generator
) -> None:
    """Burn a bright text label and a square marker into a corner away from the chest wall, clear of
    the breast (in place)."""
    h, w = pixels.shape
    size = max(10, h // 28)
    font = ImageFont.load_default(size=size)
    canvas = Image.new("L", (w, h))
    draw = ImageDraw.Draw(canvas)
    tw = int(draw.textlength(text, font=font))
    c0 = w - tw - w // 30 if chest_wall_left else w // 30
    for r0 in (h // 30, h - h // 30 - 2 * size):
        box = (slice(max(0, r0 - 4), r0 + 2 * size + 4), slice(max(0, c0 - 4), c0 + tw + 4))
        if not region[box].any():
            break
    draw.text((c0, r0), text, fill=255, font=font)
    m = size // 2
    mc = c0 if chest_wall_left else c0 + tw - m
    draw.rectangle((mc, r0 + int(1.6 * size), mc + m, r0 + int(1.6 * size) + m), fill=255)
    label = np.asarray(canvas) > 127
    pixels[label & ~region] = rng.uniform(0.85, 0.98)


def _case_folder(kind: str, split: str, pid: str, side: str, view: str) -> str:
    return f"{'Mass' if kind == 'mass' else 'Calc'}-{split}_{pid}_{side}_{view}"


def _tcia_dirs(rng: np.random.Generator, series: str) -> tuple[str, str]:
    date = f"{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}-{2016 + int(rng.integers(0, 2))}"
    return f"{date}-DDSM-{rng.integers(10000, 99999)}", f"1.000000-{series}-{rng.integers(10000, 99999)}"


def _render(
    rng: np.random.Generator, opts: SynthOptions, view: str, density: int, lesions: list[dict]
) -> tuple[np.ndarray, np.ndarray, list[Lesion]]:
    h, w = opts.size
    img, region, interior = breast_tissue(rng, (h, w), view, density)
    cand = np.argwhere(interior)
    drawn = []
    for spec in lesions:
        center = cand[rng.integers(len(cand))].astype(float)
        lesion = Lesion(
            kind=spec["kind"],
            malignant_look=spec["malignant_look"],
            center=(center[0], center[1]),
            size=h
            * opts.lesion_scale
            * opts.site.lesion_size
            * (rng.uniform(0.013, 0.035) if spec["kind"] == "mass" else rng.uniform(0.01, 0.025)),
            contrast=opts.site.lesion_contrast
            * ((0.05 + 0.025 * spec["subtlety"]) if spec["kind"] == "mass" else (0.12 + 0.04 * spec["subtlety"])),
            seed=int(rng.integers(2**31)),
            scale=opts.lesion_scale,
        )
        draw_lesion(img, lesion)
        drawn.append(lesion)
    return np.clip(img, 0, 1), region, drawn


def _draw_spec(rng: np.random.Generator, opts: SynthOptions, kind: str) -> dict[str, Any]:
    """One abnormality: its type, pathology, look (concordant with the pathology or not) and subtlety."""
    u = rng.random()
    pathology = (
        "MALIGNANT"
        if u < opts.p_malignant
        else ("BENIGN" if u < opts.p_malignant + 0.35 else "BENIGN_WITHOUT_CALLBACK")
    )
    concordant = rng.random() < opts.concordance
    look = (pathology == "MALIGNANT") == concordant
    return {"kind": kind, "pathology": pathology, "malignant_look": look, "subtlety": int(rng.integers(1, 6))}


def make_patient(root: Path, seed: int, index: int, opts: SynthOptions) -> list[dict[str, Any]]:
    """Write every file of one patient; return their CSV rows (with the target CSV under ``_csv``).

    With ``opts.p_both_tables`` a breast also gets an abnormality of the other type and its films
    are written under both tables' folders; with ``opts.p_duplicate_row`` a row is listed twice.
    Those draws use their own random streams, so the other patients' files do not change with the knobs.
    """
    rng = np.random.default_rng([seed, index])
    both = np.random.default_rng([seed, index, 1])
    pid = f"P_{index + 1:05d}"
    kind = "mass" if rng.random() < 0.55 else "calcification"
    split = "Training" if rng.random() < 0.8 else "Test"
    density = int(rng.integers(1, 5))
    sides = ["LEFT", "RIGHT"] if rng.random() < 0.2 else [["LEFT", "RIGHT"][int(rng.integers(2))]]
    other = "calcification" if kind == "mass" else "mass"
    other_split = {"Training": "Test", "Test": "Training"}[split] if both.random() < opts.p_split_differs else split
    rows = []
    for side in sides:
        specs = [_draw_spec(rng, opts, kind) for _ in range(1 if rng.random() < 0.85 else 2)]
        splits = {kind: split}
        if both.random() < opts.p_both_tables:  # the same films listed in the mass and the calc table
            specs.append(_draw_spec(both, opts, other))
            splits[other] = other_split
        views = ["CC", "MLO"] if rng.random() < 0.95 else [["CC", "MLO"][int(rng.integers(2))]]
        for view in views:
            rows += _write_view(root, rng, opts, kind, split, pid, side, view, density, specs, splits)
    twice = np.random.default_rng([seed, index, 2])
    return [copy for r in rows for copy in ([r, dict(r)] if twice.random() < opts.p_duplicate_row else [r])]


def _film(
    rng: np.random.Generator, opts: SynthOptions, side: str, view: str, density: int, specs: list[dict]
) -> tuple[np.ndarray, np.ndarray, bool, tuple | None, list[Lesion]]:
    """Draw one film: (display pixels, stored pixels, MONOCHROME1?, VOI window or None, its lesions)."""
    img, region, lesions = _render(rng, opts, view, density, specs)
    if side == "RIGHT":  # stored with the chest wall on the right, as in CBIS-DDSM
        img, region = img[:, ::-1].copy(), region[:, ::-1].copy()
        for les in lesions:
            les.mask = les.mask[:, ::-1]
    film = np.random.default_rng(int(rng.integers(2**31)))  # own stream: the knob changes nothing else
    if film.random() < opts.p_film_artefacts:  # never over a lesion; only an edge strip covers breast
        add_film_artefacts(
            img,
            region,
            film,
            chest_wall_left=side == "LEFT",
            protect=np.any([les.mask for les in lesions], axis=0) if lesions else None,
        )
    burn_label(img, region, f"{side[0]} {view}", side == "LEFT", rng)
    img = opts.site.apply(img, region, np.random.default_rng(int(film.integers(2**31))))
    gain = rng.uniform(0.85, 1.0)
    display = np.round(img * gain * 65535).astype(np.uint16)
    mono1 = rng.random() < opts.p_monochrome1
    stored = (65535 - display) if mono1 else display
    window = None
    if rng.random() < opts.p_window:
        window = (
            32768 * rng.uniform(0.95, 1.05),
            65536 * rng.uniform(1.0, 1.1),
            "LINEAR" if rng.random() < 0.8 else "LINEAR_EXACT",
        )
    return display, stored, mono1, window, lesions


def _write_view(root, rng, opts, kind, split, pid, side, view, density, specs, splits=None) -> list[dict[str, Any]]:
    """Write one film (its full-image DICOM under the case folder of every table that lists it, and an
    ROI mask and crop per abnormality); return its CSV rows. ``splits``: {kind: split} of every table
    that lists the film (default ``{kind: split}``); ``specs`` carry their kind."""
    display, stored, mono1, window, lesions = _film(rng, opts, side, view, density, specs)
    splits = splits or {kind: split}
    folders = {k: _case_folder(k, s, pid, side, view) for k, s in splits.items()}
    study, series = make_uid(pid, side, view, "study"), make_uid(pid, side, view, "series")
    d_study, d_series = _tcia_dirs(rng, "full mammogram images")
    codec = "rle" if rng.random() < opts.p_rle else "explicit"
    for folder in folders.values():  # the same film under each table's case folder
        ds = build_dataset(
            stored,
            laterality=side[0],
            view=view,
            photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
            window=window,
            patient_id=folder,
            study_uid=study,
            series_uid=series,
            sop_uid=make_uid(pid, side, view, "sop"),
        )
        save_dataset(ds, root / folder / d_study / d_series / "1-1.dcm", codec)
    rows = []
    for k, (spec, les) in enumerate(zip(specs, lesions), start=1):
        folder = folders[spec["kind"]]
        roi_uids = _write_roi(root / f"{folder}_{k}", rng, opts, les, display, (pid, side, view, k))
        uids = (study, series, *roi_uids)
        rows.append(_csv_row(rng, spec, (pid, side, view, k), density, splits[spec["kind"]], folder, uids))
    return rows


def _write_roi(
    case: Path, rng: np.random.Generator, opts: SynthOptions, les: Lesion, display: np.ndarray, key: tuple
) -> tuple[str, str]:
    """Write one abnormality's ROI mask (sometimes a few pixels off) and crop, in a random order of
    ``1-1.dcm``/``1-2.dcm``, under ``case`` (``<case folder>_<abnormality id>``); return their study and
    series UIDs. ``key``: (patient, side, view, abnormality id)."""
    pid, side, view, k = key
    r_study, r_series = make_uid(pid, side, view, k, "roi-study"), make_uid(pid, side, view, k, "roi-series")
    mask = les.mask.astype(np.uint8) * 255
    if rng.random() < opts.p_mask_off:  # real CBIS masks are sometimes a few pixels off
        dr, dc = (int(x) for x in rng.integers(-4, 5, 2))
        mask = np.pad(mask, ((0, max(dr, 0)), (0, max(dc, 0))))[
            : mask.shape[0] + min(dr, 0) or None, : mask.shape[1] + min(dc, 0) or None
        ]
    rr, cc = np.nonzero(les.mask)
    pad = int(0.2 * (rr.max() - rr.min())) + 8
    crop = display[max(0, rr.min() - pad) : rr.max() + pad, max(0, cc.min() - pad) : cc.max() + pad]
    d_rstudy, d_rseries = _tcia_dirs(rng, "ROI mask images")
    names = ["1-1.dcm", "1-2.dcm"] if rng.random() < 0.5 else ["1-2.dcm", "1-1.dcm"]
    for pixels, description, role, name in (
        (mask, "ROI mask images", "mask", names[0]),
        (np.ascontiguousarray(crop), "cropped images", "crop", names[1]),
    ):
        ds = build_dataset(
            pixels,
            laterality=side[0],
            view=view,
            patient_id=case.name,
            study_uid=r_study,
            series_uid=r_series,
            series_description=description,
            sop_uid=make_uid(pid, side, view, k, role),
        )
        save_dataset(ds, case / d_rstudy / d_rseries / name)
    return r_study, r_series


def _csv_row(
    rng: np.random.Generator,
    spec: dict[str, Any],
    key: tuple,
    density: int,
    split: str,
    folder: str,
    uids: tuple[str, str, str, str],
) -> dict[str, Any]:
    """One abnormality's row of its description CSV (target CSV under ``_csv``), with descriptors drawn
    for its look and the old-layout file paths the real CSVs carry. ``key``: (patient, side, view, id);
    ``folder``: the film's case folder; ``uids``: the film's study and series, then its ROI's."""
    pid, side, view, k = key
    kind = spec["kind"]
    shapes, dists = DESCRIPTORS[(kind, spec["malignant_look"])]
    malignant = spec["pathology"] == "MALIGNANT"
    # old-layout paths as in the CSVs; calc files put the crop at 000001, mass files the mask
    study, series, r_study, r_series = uids
    crop_n, mask_n = ("000001", "000000") if kind == "calcification" else ("000000", "000001")
    crop_path = f"{folder}_{k}/{r_study}/{r_series}/{crop_n}.dcm"
    mask_path = f"{folder}_{k}/{r_study}/{r_series}/{mask_n}.dcm"
    if kind == "calcification":
        crop_path += "\n"
    else:
        mask_path += "\n"
    return {
        "_csv": CSV_NAMES[(kind, split)],
        "patient_id": pid,
        DENSITY_COLUMN[kind]: density,
        "left or right breast": side,
        "image view": view,
        "abnormality id": k,
        "abnormality type": kind,
        HEADERS[kind][6]: shapes[int(rng.integers(len(shapes)))],
        HEADERS[kind][7]: dists[int(rng.integers(len(dists)))],
        "assessment": int(rng.integers(4, 6)) if malignant else int(rng.integers(2, 5)),
        "pathology": spec["pathology"],
        "subtlety": spec["subtlety"],
        "image file path": f"{folder}/{study}/{series}/000000.dcm",
        "cropped image file path": crop_path,
        "ROI mask file path": mask_path,
    }


def _write_csv(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def make_cbis_tree(
    out: str | os.PathLike,
    patients: int = 100,
    seed: int = 0,
    size: tuple[int, int] = (1152, 896),
    workers: int | None = None,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Generate ``patients`` synthetic CBIS-DDSM patients under ``out``.

    Layout: ``out/CBIS-DDSM/<case>/<date>-DDSM-<n>/1.000000-full mammogram images-<n>/1-1.dcm``, ROI mask
    and crop pairs under ``<case>_<abn>/.../1.000000-ROI mask images-<n>/1-1.dcm, 1-2.dcm``, and the
    four ``*_case_description_*_set.csv`` beside ``CBIS-DDSM``. Deterministic per ``seed`` whatever
    ``workers`` is.

    Returns:
        A summary: patients, images (physical films: patient, side, view), image_files (full-image
        DICOMs: a film in both tables has two), images_in_both_tables, lesions, malignant image
        fraction, duplicated_rows (truth rows written twice: ``lesions`` counts each once), seconds.
    """
    t0 = time.time()
    opts = SynthOptions(size=(int(size[0]), int(size[1])), **options)
    out = Path(out)
    root = out / "CBIS-DDSM"
    root.mkdir(parents=True, exist_ok=True)
    results = run_parallel(make_patient, [(root, seed, i, opts) for i in range(patients)], workers, "synth", progress)
    rows = [r for res in results for r in res]
    for (kind, _split), name in CSV_NAMES.items():
        header = [h.format(density=DENSITY_COLUMN[kind]) for h in HEADERS[kind]]
        _write_csv(out / name, header, [r for r in rows if r["_csv"] == name])
    columns = ["_csv", "patient_id", "left or right breast", "image view", "pathology", "image file path"]
    duplicated = int(pd.DataFrame(rows).reindex(columns=[*columns, "abnormality id"]).astype(str).duplicated().sum())
    films = pd.DataFrame(rows).reindex(columns=columns).astype(str)
    films["film"] = films["patient_id"] + "_" + films["left or right breast"] + "_" + films["image view"]
    malignant = films.groupby("film")["pathology"].agg(lambda s: (s == "MALIGNANT").any())
    return {
        "root": str(out),
        "patients": patients,
        "images": len(malignant),
        "image_files": films["image file path"].nunique(),
        "images_in_both_tables": int((films.groupby("film")["_csv"].agg(lambda s: s.str[:4].nunique()) > 1).sum()),
        "lesions": len(rows) - duplicated,
        "duplicated_rows": duplicated,
        "malignant_image_fraction": round(float(malignant.mean()) if len(malignant) else 0.0, 3),
        "seconds": round(time.time() - t0, 2),
    }
