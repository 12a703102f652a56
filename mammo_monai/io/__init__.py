"""Reading mammograms: DICOM (pydicom + pylibjpeg), PNG / PGM / TIFF (Pillow), one axis convention (C, H, W)."""

from mammo_monai.io.dicom import read_dicom
from mammo_monai.io.errors import MammogramError, describe_error
from mammo_monai.io.naming import parse_name, parse_path
from mammo_monai.io.raster import atomic_write_png, read_raster, to_uint16
from mammo_monai.io.reader import (
    SUPPORTED_SUFFIXES,
    LoadMammogram,
    LoadMammogramd,
    MammogramReader,
    as_metatensor,
    is_dicom,
    read_mammogram,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadMammogram",
    "LoadMammogramd",
    "MammogramError",
    "MammogramReader",
    "as_metatensor",
    "atomic_write_png",
    "describe_error",
    "is_dicom",
    "parse_name",
    "parse_path",
    "read_dicom",
    "read_mammogram",
    "read_raster",
    "to_uint16",
]
