"""What every dataset adapter returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mammo_monai.data.manifest import IMAGE_COLUMNS, LESION_COLUMNS


@dataclass
class AdapterResult:
    """Images and lesions in the manifest's columns (paths to the ORIGINAL files), plus every
    problem met as ``{"file": ..., "reason": ...}`` rows. ``split`` is empty unless the dataset
    defines one."""

    images: pd.DataFrame
    lesions: pd.DataFrame
    errors: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_rows(cls, images: list[dict], lesions: list[dict], errors: list[dict[str, str]]) -> AdapterResult:
        img = pd.DataFrame(images)
        img = img.reindex(columns=IMAGE_COLUMNS + [c for c in img.columns if c not in IMAGE_COLUMNS])
        les = pd.DataFrame(lesions)
        les = les.reindex(columns=LESION_COLUMNS + [c for c in les.columns if c not in LESION_COLUMNS])
        return cls(img, les, errors)
