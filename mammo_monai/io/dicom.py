"""Read a mammogram DICOM into a float32 (1, H, W) array, display-ready (dense tissue bright)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from mammo_monai.io.dicom_truncation import truncation
from mammo_monai.io.errors import MammogramError
from mammo_monai.io.exam_key import image_keys
from mammo_monai.io.limits import check_pixels
from mammo_monai.io.naming import VIEW_MEANINGS, VIEWS, parse_path

_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
MAMMOGRAPHY_MODALITIES = ("MG",)


def check_modality(ds: pydicom.Dataset, path: str | os.PathLike, modalities: Sequence[str] | None) -> None:
    """Raise unless the DICOM's Modality is one of ``modalities`` (None: accept any).

    A missing Modality (a malformed file, or a bare secondary capture) gives no evidence either way
    and is accepted.

    Raises:
        MammogramError: naming the file and its modality.
    """
    modality = str(ds.get("Modality", "") or "").upper()
    if modalities is None or not modality or modality in {m.upper() for m in modalities}:
        return
    raise MammogramError(
        path,
        f"Modality {modality} is not a mammogram (expected {'/'.join(modalities)}); "
        f"accept it on purpose with --accept-modality {modality}",
    )


def _stored_range(ds: pydicom.Dataset) -> tuple[float, float]:
    """Range of the stored values from Bits Stored and Pixel Representation."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 0:
        return 0.0, float(2**bits - 1)
    return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)


def _modality_range(ds: pydicom.Dataset) -> tuple[float, float]:
    """Range of the values after the Modality LUT / rescale (PS3.3 C.11.1)."""
    if ds.get("ModalityLUTSequence"):
        bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    lo, hi = _stored_range(ds)
    slope, intercept = float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))
    a, b = lo * slope + intercept, hi * slope + intercept
    return min(a, b), max(a, b)


def _voi_range(ds: pydicom.Dataset, modality_range: tuple[float, float]) -> tuple[float, float]:
    """Range of the values after the VOI LUT or windowing (what pydicom's ``apply_voi_lut`` maps to)."""
    if ds.get("VOILUTSequence"):
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    return modality_range


def _view(ds: pydicom.Dataset) -> str:
    """View code from ViewPosition, the View Code Sequence, or CBIS-DDSM's Patient Orientation quirk."""
    vp = str(ds.get("ViewPosition", "") or "").upper()
    if vp in VIEWS:
        return vp
    for item in ds.get("ViewCodeSequence", []) or []:
        meaning = str(item.get("CodeMeaning", "")).lower()
        if meaning in VIEW_MEANINGS:
            return VIEW_MEANINGS[meaning]
    po = ds.get("PatientOrientation", "")
    po = "".join(po) if isinstance(po, (list, pydicom.multival.MultiValue)) else str(po)
    return po.upper() if po.upper() in VIEWS else ""


def _laterality(ds: pydicom.Dataset) -> str:
    for tag in ("ImageLaterality", "Laterality"):
        val = str(ds.get(tag, "") or "").upper()
        if val in ("L", "R"):
            return val
    return ""


def dicom_metadata(ds: pydicom.Dataset, path: str | os.PathLike) -> dict[str, Any]:
    """Non-identifying metadata of a mammogram. Patient names, IDs, UIDs and dates are never copied: the
    study and patient come as salted hashes (``exam_key``, ``patient_key``, ``grouped_by``: :func:`image_keys`)."""
    name_side, name_view = parse_path(path)
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing") or [float("nan")] * 2
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return {
        "source_path": str(path),
        "format": "dicom",
        "laterality": _laterality(ds) or name_side,
        "view": _view(ds) or name_view,
        "pixel_spacing": [float(spacing[0]), float(spacing[1])],
        "bits_stored": int(ds.get("BitsStored", 0) or 0),
        "modality": str(ds.get("Modality", "") or ""),
        "photometric_interpretation": str(ds.get("PhotometricInterpretation", "")),
        "transfer_syntax": ts.name if ts is not None else "",
        "voi_applied": bool(ds.get("VOILUTSequence") or "WindowCenter" in ds),
        **image_keys(path, str(ds.get("PatientID", "") or ""), str(ds.get("StudyInstanceUID", "") or "")),
    }


def read_dicom(
    path: str | os.PathLike, apply_voi: bool = True, modalities: Sequence[str] | None = MAMMOGRAPHY_MODALITIES
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one DICOM mammogram.

    Applies, in the order of the DICOM grayscale pipeline, the Modality LUT (rescale slope and
    intercept), then the first VOI LUT or window (LINEAR, LINEAR_EXACT or SIGMOID) when present,
    then inverts MONOCHROME1 so that dense tissue is bright in every output. Compressed transfer
    syntaxes (RLE, JPEG lossless, JPEG-LS, JPEG 2000) are decoded by pydicom's pylibjpeg plugins.

    Args:
        path: the DICOM file.
        apply_voi: apply the VOI LUT / window when the file has one.
        modalities: accepted values of the Modality tag (default MG); None accepts any (a CT
            slice or a radiograph on purpose).

    Returns:
        ``(image, meta)``: float32 array shaped (1, Rows, Columns) and the metadata of
        :func:`dicom_metadata` plus ``intensity_range`` (the value range the image can take, used
        for scaling by bit depth) and ``original_shape``.

    Raises:
        MammogramError: naming the file, for a missing, unparsable, truncated, non-image, colour,
            multi-frame, undecodable or too large file (Rows x Columns x frames over the limit of
            :mod:`mammo_monai.io.limits`, checked before decoding), or one of another modality.
    """
    ds = _checked_header(path, modalities)
    arr = _pixels(ds, path)
    out, (lo, hi) = _grayscale(ds, arr, path, apply_voi)
    meta = dicom_metadata(ds, path)
    meta["intensity_range"] = [float(lo), float(hi)]
    meta["container_range"] = [float(lo), float(hi)]
    meta["original_shape"] = [int(arr.shape[0]), int(arr.shape[1])]
    return out[None], meta


def _checked_header(path: str | os.PathLike, modalities: Sequence[str] | None) -> pydicom.Dataset:
    """The parsed DICOM, checked before any pixel is decoded: present, parsable, not truncated, of an accepted
    size, with pixel data, of an accepted modality, greyscale; else a :class:`MammogramError` naming the file."""
    if not os.path.isfile(path):
        raise MammogramError(path, "file not found")
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise MammogramError(path, "not a DICOM file (no 'DICM' marker and no valid header)") from None
    except Exception as err:  # pydicom raises many types for damaged files
        raise MammogramError(path, f"cannot parse the DICOM header ({type(err).__name__}: {err})") from None
    cut = truncation(path, ds)
    if cut is not None:
        raise MammogramError(path, cut)
    try:
        shape = [int(ds.get(k, 0) or 0) for k in ("Rows", "Columns", "NumberOfFrames")]
    except Exception as err:
        raise MammogramError(path, f"cannot parse the image size ({type(err).__name__}: {err})") from None
    check_pixels(path, shape[0], shape[1], shape[2] or 1)  # before pydicom decodes anything
    if not any(tag in ds for tag in _PIXEL_TAGS):
        sop = getattr(ds.get("SOPClassUID", None), "name", "unknown SOP class")
        raise MammogramError(path, f"DICOM has no PixelData: not an image ({sop})")
    check_modality(ds, path, modalities)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise MammogramError(path, f"photometric interpretation {photometric or 'missing'!r} is not greyscale")
    return ds


def _pixels(ds: pydicom.Dataset, path: str | os.PathLike) -> np.ndarray:
    """The stored pixel values of a one-frame image, decoded; a :class:`MammogramError` when they cannot be."""
    try:
        arr = ds.pixel_array
    except Exception as err:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        ts_name = ts.name if ts is not None else "unknown transfer syntax"
        raise MammogramError(path, f"cannot decode pixel data ({ts_name}): {type(err).__name__}: {err}") from None
    if arr.ndim != 2:
        raise MammogramError(path, f"expected one 2D frame, got pixel array of shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise MammogramError(path, "image has no pixels")
    return arr


def _grayscale(
    ds: pydicom.Dataset, arr: np.ndarray, path: str | os.PathLike, apply_voi: bool
) -> tuple[np.ndarray, tuple[float, float]]:
    """``arr`` through the Modality LUT, the first VOI LUT or window (``apply_voi``) and the MONOCHROME1
    inversion, as float32, with the range of values it can take."""
    lo, hi = _modality_range(ds)
    out = apply_modality_lut(arr, ds)
    if apply_voi and (ds.get("VOILUTSequence") or "WindowCenter" in ds):
        try:
            out = apply_voi_lut(out, ds, index=0)
        except Exception as err:
            raise MammogramError(path, f"invalid VOI LUT / window: {err}") from None
        lo, hi = _voi_range(ds, (lo, hi))
    out = np.asarray(out, dtype=np.float32)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        out = (lo + hi) - out
    return out, (lo, hi)
