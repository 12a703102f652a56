"""One 2-D slice of a digital breast tomosynthesis volume (a multi-frame DICOM) written as a 2-D DICOM.

The package reads one 2-D frame per image (:func:`mammo_monai.io.dicom.read_dicom` refuses multi-frame
files), so the BCS-DBT adapter writes the slice it chose into a derived single-frame DICOM with the
volume's window (from the top level, the shared or the per-frame functional groups, where Breast
Tomosynthesis Image Storage keeps it) and the laterality and view the dataset's tables give. The frame is
written in the dataset's reference frame: turned by 180 degrees when the breast lies on the other side
than the laterality says (the Duke reference code's ``dcmread_image`` rule, in which BCS-DBT's boxes are
given), which ``DerivationDescription`` records. Only the chosen frame is decoded
(``pydicom.pixels.pixel_array(..., index=)``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mammo_monai.io.atomic import atomic_path
from mammo_monai.io.errors import MammogramError

#: Digital Mammography X-Ray Image Storage - For Presentation: what a derived 2-D slice is written as
DX_MAMMO_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
TURNED = ", turned by 180 degrees"


def frame_count(path: str | os.PathLike) -> int:
    """NumberOfFrames of a DICOM, read from its header only (1 when absent)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as err:  # pydicom raises many types for damaged files
        raise MammogramError(path, f"cannot parse the DICOM header ({type(err).__name__}: {err})") from None
    return int(ds.get("NumberOfFrames", 1) or 1)


def pixel_side(frame: np.ndarray) -> str:
    """The side the breast lies on, as the Duke DBT reference code decides it: "R" when the sum of the
    first column is smaller than that of the last (the chest wall touches the right edge), else "L"."""
    return "R" if float(frame[:, 0].sum()) < float(frame[:, -1].sum()) else "L"


def _window(ds: Dataset, index: int) -> tuple[float, float] | None:
    """(center, width) from the top level, the shared functional groups or frame ``index``'s group."""
    if "WindowCenter" in ds and "WindowWidth" in ds:
        return float(np.ravel(ds.WindowCenter)[0]), float(np.ravel(ds.WindowWidth)[0])
    groups = [ds.get("SharedFunctionalGroupsSequence"), ds.get("PerFrameFunctionalGroupsSequence")]
    for seq, item in zip(groups, (0, index)):
        try:
            voi = seq[item].FrameVOILUTSequence[0]
            return float(np.ravel(voi.WindowCenter)[0]), float(np.ravel(voi.WindowWidth)[0])
        except (AttributeError, IndexError, KeyError, TypeError):
            continue
    return None


def read_frame(path: str | os.PathLike, index: int) -> tuple[np.ndarray, Dataset]:
    """Frame ``index`` (0-based) of a multi-frame DICOM and the file's header (without pixel data)."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        frame = pydicom.pixels.pixel_array(str(path), index=index)
    except Exception as err:
        raise MammogramError(path, f"cannot decode frame {index} ({type(err).__name__}: {err})") from None
    if frame.ndim != 2:
        raise MammogramError(path, f"frame {index} has shape {frame.shape}, not one greyscale frame")
    return frame, header


def write_slice(
    volume: str | os.PathLike, index: int, out: str | os.PathLike, laterality: str, view: str
) -> dict[str, Any]:
    """Write frame ``index`` of ``volume`` to ``out`` as a 2-D DICOM, turned by 180 degrees when its
    :func:`pixel_side` is not ``laterality``; returns its size and whether it was turned."""
    frame, src = read_frame(volume, index)
    turned = pixel_side(frame) != laterality
    if turned:
        frame = frame[::-1, ::-1]
    sop = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_MAMMO_PRESENTATION
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX_MAMMO_PRESENTATION, sop
    ds.Modality = "MG"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = f"frame {index + 1} of a tomosynthesis volume" + (TURNED if turned else "")
    ds.ImageLaterality, ds.ViewPosition = laterality, view
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, str(src.get("PhotometricInterpretation", "MONOCHROME2"))
    ds.Rows, ds.Columns = (int(n) for n in frame.shape)
    bits = 8 * frame.dtype.itemsize
    stored = int(src.get("BitsStored", bits))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored, stored - 1
    ds.PixelRepresentation = int(frame.dtype.kind == "i")
    for key in ("RescaleSlope", "RescaleIntercept", "PixelSpacing"):
        if key in src:
            setattr(ds, key, src.get(key))
    window = _window(src, index)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
    ds.PixelData = np.ascontiguousarray(frame).tobytes()
    out = Path(out)
    with atomic_path(out) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return {"rows": int(frame.shape[0]), "columns": int(frame.shape[1]), "turned": turned}


def was_turned(derived: str | os.PathLike) -> bool:
    """Whether :func:`write_slice` turned the frame it wrote to ``derived`` (read from its header)."""
    ds = pydicom.dcmread(derived, stop_before_pixels=True)
    return str(ds.get("DerivationDescription", "")).endswith(TURNED)
