"""mini-MIAS: ``mdbNNN.pgm`` (1024 x 1024, 8-bit) and the ``Info.txt`` table."""

from __future__ import annotations

import os
import re
from pathlib import Path

from PIL import Image

from mammo_monai.data.adapters.base import AdapterResult, walk_files

# reference, background tissue, class, then an optional severity and whatever follows: three
# numbers (x, y, radius; x sometimes starts with '*'), or a note such as '*NOTE 3*', or nothing
_ROW = re.compile(
    r"^(mdb\d{3})\s+([FGD])\s+(CALC|CIRC|SPIC|MISC|ARCH|ASYM|NORM)(?:\s+([BM])(?=\s|$))?\s*(.*?)\s*$", re.I
)
_NUMBER = re.compile(r"^\*?(\d+(?:\.\d+)?)\*?$")


def find_info(root: Path) -> Path:
    """``Info.txt`` in ``root`` or one folder down (any usual capitalisation)."""
    for name in ("Info.txt", "info.txt", "INFO.TXT", "Info.TXT"):
        for p in (root / name, *root.glob(f"*/{name}")):
            if p.is_file():
                return p
    raise FileNotFoundError(f"{root}: mini-MIAS Info.txt not found here or one folder down")


def parse_info_row(line: str) -> dict | None:
    """One ``Info.txt`` row as ``ref, tissue, cls, severity, x, y, radius, note``; ``None`` when the
    row does not even give a reference, a tissue letter and a class. Coordinates are ``None``
    unless the row ends with three numbers; anything else after the severity is the ``note``."""
    m = _ROW.match(line.strip())
    if not m:
        return None
    ref, tissue, cls, severity, rest = m.groups()
    row = {
        "ref": ref.lower(),
        "tissue": tissue.upper(),
        "cls": cls.upper(),
        "severity": (severity or "").upper(),
        "x": None,
        "y": None,
        "radius": None,
        "note": rest,
    }
    numbers = [_NUMBER.match(tok) for tok in rest.split()]
    if len(numbers) == 3 and all(numbers):
        row["x"], row["y"], row["radius"] = (
            float(n.group(1)) if "." in n.group(1) else int(n.group(1)) for n in numbers
        )
        row["note"] = ""
    return row


def _height(path: Path) -> tuple[int | None, str]:
    """Image height from the file header, or ``None`` and why it cannot be read."""
    try:
        with Image.open(path) as im:
            return im.size[1], ""
    except Exception as err:  # PIL raises OSError, SyntaxError or ValueError for broken headers
        return None, f"cannot be read ({type(err).__name__}: {err}); image skipped"


def _read_info(info: Path, errors: list[dict[str, str]]) -> tuple[dict[str, list[dict]], dict[str, str], int]:
    """``Info.txt`` as (reference -> its parsed rows, reference -> why its label is doubtful, rows read);
    an unparsable row is reported and makes its image's label doubtful."""
    rows: dict[str, list[dict]] = {}
    doubtful: dict[str, str] = {}
    truth_rows = 0
    for n, line in enumerate(info.read_text(errors="replace").splitlines(), 1):
        if not line.strip().lower().startswith("mdb"):
            continue
        truth_rows += 1
        where = f"{info.name}:{n}"
        row = parse_info_row(line)
        if row is None:
            ref = line.strip()[:6].lower()
            errors.append({"file": where, "reason": f"unparsable row {line.strip()!r}"})
            doubtful.setdefault(ref, "an unparsable row")
            rows.setdefault(ref, [])
            continue
        row["where"] = where
        rows.setdefault(row["ref"], []).append(row)
    return rows, doubtful, truth_rows


def _lesions(ref: str, refs: list[dict], image: str, height: int, errors: list[dict[str, str]]) -> list[dict]:
    """The lesion rows of image ``ref`` (``height`` rows tall): centre flipped to rows from the top; a row
    without severity is skipped, one without coordinates kept without geometry (both reported)."""
    lesions = []
    for r in refs:
        if r["cls"] == "NORM":
            continue
        if not r["severity"]:
            errors.append({"file": r["where"], "reason": f"{ref}: abnormal row without severity; lesion skipped"})
            continue
        lesion = {
            "image_id": ref,
            "image": image,
            "lesion_type": "calc" if r["cls"] == "CALC" else "mass",
            "pathology": "malignant" if r["severity"] == "M" else "benign",
            "mias_class": r["cls"],
            "mask": "",
            "note": r["note"],
        }
        if r["x"] is None:
            what = f"note {r['note']!r} instead of coordinates" if r["note"] else "no coordinates"
            errors.append({"file": r["where"], "reason": f"{ref}: {what}; lesion kept without geometry"})
        else:
            lesion.update(center_row=height - r["y"], center_col=r["x"], radius=r["radius"])
        lesions.append(lesion)
    return lesions


def load_mias(root: str | os.PathLike) -> AdapterResult:
    """Read mini-MIAS.

    x, y in ``Info.txt`` count from the BOTTOM-left corner; they become ``center_row = height - y``,
    ``center_col = x``. A lesion row without coordinates, or with a note in their place (e.g.
    ``mdb239 D CALC M *NOTE 3*``: calcifications spread over the breast), keeps the lesion without
    geometry and the image with its label (reported). All views are MLO. Patient: mdb001 and mdb002
    are one woman's two breasts, so ``(n + 1) // 2``. Laterality is not in the files: left empty here
    and inferred from the tissue when the cache is built. CALC -> calc; CIRC, SPIC, MISC, ARCH, ASYM
    -> mass (the patch classes have no architectural distortion or asymmetry). Label: 1 if any row
    is M. An image whose label cannot be known (an unparsable or severity-less abnormal row and no
    M row) is excluded and reported, as is an image whose file cannot be read.
    """
    root = Path(root)
    info = find_info(root)
    errors: list[dict[str, str]] = []
    pgms = {p.stem.lower(): p for p in walk_files(root, errors, keep=lambda n: n.lower().endswith(".pgm"))}
    rows, doubtful, truth_rows = _read_info(info, errors)
    images, lesions = [], []
    for ref, refs in rows.items():
        malignant = any(r["severity"] == "M" for r in refs)
        for r in refs:
            if r["cls"] != "NORM" and not r["severity"]:
                doubtful.setdefault(ref, "an abnormal row without severity")
        if ref in doubtful and not malignant:
            errors.append(
                {
                    "file": f"{ref}.pgm",
                    "reason": f"label unknown ({doubtful[ref]} and no malignant row); image excluded",
                }
            )
            continue
        if ref not in pgms:
            errors.append({"file": f"{ref}.pgm", "reason": "image listed in Info.txt not found"})
            continue
        height, why = _height(pgms[ref])
        if height is None:
            errors.append({"file": str(pgms[ref]), "reason": why})
            continue
        images.append(
            {
                "image_id": ref,
                "image": str(pgms[ref]),
                "patient_id": f"mias_{(int(ref[3:]) + 1) // 2:03d}",
                "laterality": "",
                "view": "MLO",
                "label": int(malignant),
                "dataset": "mias",
                "split": "",
                "background_tissue": refs[0]["tissue"] if refs else "",
            }
        )
        lesions += _lesions(ref, refs, str(pgms[ref]), height, errors)
    listed = set(rows)
    errors += [
        {"file": str(p), "reason": "not listed in Info.txt; skipped"}
        for ref, p in sorted(pgms.items())
        if ref not in listed
    ]
    return AdapterResult.from_rows(images, lesions, errors, truth_rows=truth_rows)
