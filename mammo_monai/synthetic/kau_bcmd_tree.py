"""A miniature KAU-BCMD (version 1, as copied to Kaggle): JPEG mammograms in BI-RADS folders.

Layout kept: ``BIRAD1/b1``, ``Birad3/b3``, ``Birad4/b4``, ``Birad5/Birad5`` (inconsistent case and a nested
folder of each), four views per case in the case's category, colour (RGB) JPEGs, an ultrasound folder
and a metadata sheet beside the mammograms. File names (``<case>_<side><view>.jpg``, some
``<case>-<side>_<view>.jpg``) are a guess: the published descriptions do not give them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mammo_monai.synthetic.view_render import render_view

FOLDERS = {1: "BIRAD1/b1", 3: "Birad3/b3", 4: "Birad4/b4", 5: "Birad5/Birad5"}
VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))


def make_kau_bcmd_tree(
    root: str | os.PathLike, cases: int = 8, seed: int = 0, size: tuple[int, int] = (96, 72)
) -> dict[str, Any]:
    """Write ``cases`` cases, their categories cycling 1, 3, 4, 5; returns the truth: one entry per
    mammogram (case, side, view, BI-RADS, label for BI-RADS >= 4, JPEG path)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    truth = []
    for c in range(cases):
        case, birads = 1001 + c, (1, 3, 4, 5)[c % 4]
        folder = root / FOLDERS[birads]
        folder.mkdir(parents=True, exist_ok=True)
        lesion_side = "R" if c % 2 else "L"
        for side, view in VIEWS:
            lesions = [("mass", birads >= 4)] if birads >= 3 and side == lesion_side else []
            img, _ = render_view(rng, size, side, view, lesions)
            name = f"{case}-{side}_{view}.jpg" if c % 3 == 2 else f"{case}_{side}{view}.jpg"
            grey = (img * 255).astype(np.uint8)
            Image.fromarray(np.stack([grey] * 3, -1)).save(folder / name, quality=92)
            truth.append(
                {
                    "case": str(case),
                    "side": side,
                    "view": view,
                    "birads": birads,
                    "label": int(birads >= 4),
                    "path": str(folder / name),
                }
            )
        if c == 2:
            us = folder / "Ultrasound"
            us.mkdir()
            Image.fromarray(np.zeros((32, 32), np.uint8)).save(us / f"{case}_US1.jpg")
    (root / "correctSheetlast.xlsx").write_bytes(b"PK\x03\x04" + bytes(60))
    return {"images": truth, "cases": cases}
