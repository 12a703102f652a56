"""Write synthetic mammogram DICOMs the way CBIS-DDSM's are (and with the variants real archives have)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from mammo_monai.io.atomic import atomic_path

CBIS_UID_PREFIX = "1.3.6.1.4.1.9590.100.1.2."
TRANSFER_SYNTAXES = {"explicit": ExplicitVRLittleEndian, "rle": RLELossless, "j2k": JPEG2000Lossless}


def make_uid(*entropy: object) -> str:
    """A deterministic CBIS-style UID from the given values."""
    return generate_uid(prefix=CBIS_UID_PREFIX, entropy_srcs=[str(e) for e in entropy])


def build_dataset(
    pixels: np.ndarray,
    *,
    laterality: str = "",
    view: str = "",
    photometric: str = "MONOCHROME2",
    window: tuple[float, float, str] | None = None,
    patient_id: str = "ANON",
    series_description: str = "full mammogram images",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    laterality_tag: str = "Laterality",
    rescale: tuple[float, float] | None = None,
) -> Dataset:
    """An uncompressed Secondary Capture MG dataset holding ``pixels`` (2D uint8 or uint16).

    CBIS-DDSM quirks kept: laterality in (0020,0060) Laterality, the view in Patient Orientation,
    the case name as Patient ID. ``window`` = (center, width, VOI LUT function).
    """
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"pixels must be 2D uint8/uint16, got {pixels.dtype} {pixels.shape}")
    bits = 8 * pixels.dtype.itemsize
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "MG"
    ds.ConversionType = "WSD"
    ds.SeriesDescription = series_description
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.BodyPartExamined = "BREAST"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = "DDSM"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    if view:
        ds.PatientOrientation = view
    if laterality:
        setattr(ds, laterality_tag, laterality)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:.1f}", f"{window[1]:.1f}"
        ds.VOILUTFunction = window[2]
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = f"{rescale[0]:g}", f"{rescale[1]:g}"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def save_dataset(ds: Dataset, path: str | os.PathLike, transfer_syntax: str | UID = "explicit") -> Path:
    """Encode with ``transfer_syntax`` ("explicit", "rle", "j2k" or a UID) and write atomically."""
    uid = TRANSFER_SYNTAXES.get(str(transfer_syntax), transfer_syntax)
    if uid != ExplicitVRLittleEndian:
        ds.compress(uid, generate_instance_uid=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path


def write_dicom(path: str | os.PathLike, pixels: np.ndarray, transfer_syntax: str | UID = "explicit", **kwargs) -> Path:
    """:func:`build_dataset` then :func:`save_dataset`."""
    return save_dataset(build_dataset(pixels, **kwargs), path, transfer_syntax)
