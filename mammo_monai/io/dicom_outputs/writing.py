"""What the SEG and SR writers share: reading the source header, the equipment they name, writing atomically."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from mammo_monai import __version__
from mammo_monai.io.atomic import atomic_path
from mammo_monai.io.errors import MammogramError

#: the Manufacturer of every object we write; the model is its Manufacturer's Model Name
MANUFACTURER = "mammo-monai"
#: Device Serial Number (type 1 in the Enhanced General Equipment module): software has no serial, so
#: the package and its version
DEVICE_SERIAL = f"mammo-monai {__version__}"


def read_source(source: str | os.PathLike | Dataset) -> Dataset:
    """The header of the source DICOM (no pixels read); a :class:`~mammo_monai.io.errors.MammogramError`
    naming the file when it is no DICOM."""
    if isinstance(source, Dataset):
        return source
    try:
        return pydicom.dcmread(source, stop_before_pixels=True)
    except Exception as err:
        raise MammogramError(source, f"not a readable DICOM ({type(err).__name__})") from err


@contextmanager
def quiet_identifiers() -> Iterator[None]:
    """Silence highdicom's warnings that quote a value they check, e.g. a patient name with one component
    ("The string <name> is unlikely to represent ..."): an identifier must not reach a log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        yield


def save(dataset: Dataset, out_path: str | os.PathLike) -> Path:
    """Write ``dataset`` as a DICOM file (with its file meta) under a temporary name, then rename it."""
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return out_path
