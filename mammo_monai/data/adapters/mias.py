"""mini-MIAS: ``mdbNNN.pgm`` (1024 x 1024, 8-bit) and the ``Info.txt`` table."""

from __future__ import annotations

import os
import re
from pathlib import Path

from PIL import Image

from mammo_monai.data.adapters.base import AdapterResult

# reference, background tissue, class, then optional severity, x, y, radius
_ROW = re.compile(r"^(mdb\d{3})\s+([FGD])\s+(CALC|CIRC|SPIC|MISC|ARCH|ASYM|NORM)(?:\s+([BM]))?(?:\s+(\*?\d+)\s+(\d+)\s+(\d+))?\s*$", re.I)


def find_info(root: Path) -> Path:
    for name in ("Info.txt", "info.txt", "INFO.TXT", "Info.TXT"):
        for p in (root / name, *root.glob(f"*/{name}")):
            if p.is_file():
                return p
    raise FileNotFoundError(f"{root}: mini-MIAS Info.txt not found here or one folder down")


def load_mias(root: str | os.PathLike) -> AdapterResult:
    """Read mini-MIAS.

    x, y in ``Info.txt`` count from the BOTTOM-left corner; they become ``center_row = height - y``,
    ``center_col = x``. Rows of abnormal images without coordinates keep the lesion without geometry
    (reported). All views are MLO. Patient: mdb001 and mdb002 are one woman's two breasts, so
    ``(n + 1) // 2``. Laterality is not in the files: left empty here and inferred from the tissue
    when the cache is built. CALC -> calc; CIRC, SPIC, MISC, ARCH, ASYM -> mass (the patch classes
    have no architectural distortion or asymmetry). Label: 1 if any row is M.
    """
    root = Path(root)
    info = find_info(root)
    pgms = {p.stem.lower(): p for p in root.rglob("*.pgm")}
    images: dict[str, dict] = {}
    lesions, errors = [], []
    for n, line in enumerate(info.read_text(errors="replace").splitlines(), 1):
        if not line.strip().lower().startswith("mdb"):
            continue
        m = _ROW.match(line.strip())
        if not m:
            errors.append({"file": f"{info.name}:{n}", "reason": f"unparsable row {line.strip()!r}"})
            continue
        ref, tissue, cls, severity, x, y, radius = m.groups()
        ref, cls = ref.lower(), cls.upper()
        if ref not in images:
            if ref not in pgms:
                errors.append({"file": f"{ref}.pgm", "reason": "image listed in Info.txt not found"})
                images[ref] = {}
                continue
            with Image.open(pgms[ref]) as im:
                width, height = im.size
            images[ref] = {"image_id": ref, "image": str(pgms[ref]), "patient_id": f"mias_{(int(ref[3:]) + 1) // 2:03d}",
                           "laterality": "", "view": "MLO", "label": 0, "dataset": "mias", "split": "",
                           "background_tissue": tissue.upper(), "_height": height}
        img = images[ref]
        if not img or cls == "NORM":
            continue
        if severity is None:
            errors.append({"file": f"{info.name}:{n}", "reason": f"{ref}: abnormal row without severity; lesion skipped"})
            continue
        lesion = {"image_id": ref, "image": img["image"], "lesion_type": "calc" if cls == "CALC" else "mass",
                  "pathology": "malignant" if severity.upper() == "M" else "benign", "mias_class": cls, "mask": ""}
        if x is None:
            errors.append({"file": f"{info.name}:{n}", "reason": f"{ref}: no coordinates; lesion kept without geometry"})
        else:
            lesion.update(center_row=img["_height"] - int(y), center_col=int(x.lstrip("*")), radius=int(radius))
        lesions.append(lesion)
        img["label"] = max(img["label"], int(severity.upper() == "M"))
    rows = [{k: v for k, v in r.items() if k != "_height"} for r in images.values() if r]
    return AdapterResult.from_rows(rows, lesions, errors)
