"""One entry point for every supported file type, as a function, a MONAI ImageReader and transforms."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import ImageReader, MetaTensor
from monai.transforms import LoadImage, MapTransform, Transform
from monai.utils import TransformBackends, ensure_tuple

from mammo_monai.io.dicom import MAMMOGRAPHY_MODALITIES, read_dicom
from mammo_monai.io.errors import MammogramError
from mammo_monai.io.exam_key import image_keys
from mammo_monai.io.raster import RASTER_SUFFIXES, read_raster

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
SUPPORTED_SUFFIXES = DICOM_SUFFIXES + RASTER_SUFFIXES
#: read when a dataset adapter lists them (CDD-CESM ships JPEG only), never picked up by folder walks:
#: a lossy copy is a last resort, not a format to look for
LISTED_ONLY_SUFFIXES = (".jpg", ".jpeg")


def is_dicom(path: str | os.PathLike) -> bool:
    """True when the file carries the DICOM 'DICM' marker at byte 128, whatever its name."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def read_mammogram(
    path: str | os.PathLike, modalities: Sequence[str] | None = MAMMOGRAPHY_MODALITIES
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a DICOM, PNG, PGM or TIFF mammogram as float32 (1, H, W) plus metadata.

    DICOM is recognised by suffix or by its marker (TCIA files without suffix included).
    ``modalities``: accepted DICOM Modality values (default MG; None accepts any).

    Raises:
        MammogramError: naming the file, for a missing file, an unknown type or unreadable content.
    """
    suffix = Path(path).suffix.lower()
    if not os.path.isfile(path):
        raise MammogramError(path, "file not found")
    if suffix in DICOM_SUFFIXES or is_dicom(path):
        return read_dicom(path, modalities=modalities)
    if suffix in RASTER_SUFFIXES + LISTED_ONLY_SUFFIXES:
        image, meta = read_raster(path)
        return image, {**meta, **image_keys(path)}  # no header: the exam from the name, else the file
    raise MammogramError(path, f"unsupported file type {suffix or '(no suffix)'!r}: expected DICOM, PNG, PGM or TIFF")


class MammogramReader(ImageReader):
    """MONAI ImageReader for mammograms: (C=1, H, W) rows first, VOI LUT applied, MONOCHROME1 inverted.

    Unlike MONAI's ``PydicomReader`` it does not swap axes, applies the VOI LUT and inverts
    MONOCHROME1. It accepts any file name and raises :class:`MammogramError` for what it cannot
    read, so that the error names the problem rather than "no suitable reader".

    Args:
        modalities: accepted DICOM Modality values (default MG); None accepts any.
    """

    def __init__(self, modalities: Sequence[str] | None = MAMMOGRAPHY_MODALITIES) -> None:
        super().__init__()
        self.modalities = tuple(modalities) if modalities is not None else None

    def verify_suffix(self, filename: Sequence[os.PathLike | str] | os.PathLike | str) -> bool:
        return True

    def read(self, data: Sequence[os.PathLike | str] | os.PathLike | str, **kwargs) -> Any:
        names = ensure_tuple(data)
        if len(names) != 1:
            raise ValueError(f"MammogramReader reads one file at a time, got {len(names)}: {names}")
        return read_mammogram(names[0], self.modalities)

    def get_data(self, img: tuple[np.ndarray, dict[str, Any]]) -> tuple[np.ndarray, dict]:
        arr, meta = img
        meta = dict(meta)
        rs, cs = meta["pixel_spacing"]
        meta["affine"] = np.diag([1.0 if np.isnan(rs) else rs, 1.0 if np.isnan(cs) else cs, 1.0])
        meta["spatial_shape"] = np.asarray(arr.shape[1:])
        meta["original_channel_dim"] = 0
        return arr, meta


class LoadMammogram(Transform):
    """Load a mammogram file as a float32 ``MetaTensor`` (1, H, W) whose ``.meta`` holds laterality,
    view, pixel spacing, bits stored, intensity range, the source path and the hashed exam and patient
    keys (:func:`~mammo_monai.io.exam_key.image_keys`).

    Args:
        modalities: accepted DICOM Modality values (default MG); None accepts any.
    """

    backend = [TransformBackends.NUMPY]  # decoded and scaled in NumPy (pydicom, Pillow), returned as a MetaTensor

    def __init__(self, modalities: Sequence[str] | None = MAMMOGRAPHY_MODALITIES) -> None:
        self.reader = MammogramReader(modalities)
        self.loader = LoadImage(reader=self.reader, image_only=True, dtype=np.float32)

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        # passing the reader at call time stops LoadImage from falling back to its other readers,
        # which would replace our error ("no PixelData") by theirs
        return self.loader(filename, reader=self.reader)


class LoadMammogramd(MapTransform):
    """Dictionary version of :class:`LoadMammogram`.

    Args:
        keys: keys holding file paths.
        laterality_key: when set and missing from the dictionary, the image's laterality is copied
            there (the manifest's value, when present, wins over the file's).
        modalities: accepted DICOM Modality values (default MG); None accepts any.
    """

    backend = LoadMammogram.backend

    def __init__(
        self,
        keys: KeysCollection,
        laterality_key: str | None = "laterality",
        allow_missing_keys: bool = False,
        modalities: Sequence[str] | None = MAMMOGRAPHY_MODALITIES,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadMammogram(modalities)
        self.laterality_key = laterality_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
            if self.laterality_key and not d.get(self.laterality_key):
                d[self.laterality_key] = d[key].meta.get("laterality", "")
        return d


def as_metatensor(image: np.ndarray | torch.Tensor, meta: dict[str, Any] | None = None) -> MetaTensor:
    """Wrap an array read by :func:`read_mammogram` as a MetaTensor carrying its metadata."""
    return MetaTensor(torch.as_tensor(np.asarray(image, dtype=np.float32)), meta=dict(meta or {}))
