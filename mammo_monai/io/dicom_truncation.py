"""Tell a DICOM file cut short (a copy or download that stopped) from one that is whole.

pydicom reads a cut file without complaint: a value cut short is kept short, an element of undefined
length (encapsulated pixel data: RLE, JPEG) that never ends drops the whole dataset with a warning, and
a file cut inside the file meta header or inside an element's header simply ends. Each case is found
here from the lengths the file declares against its size, so the user reads "truncated" instead of
"no PixelData" or a decoder's byte count.
"""

from __future__ import annotations

import os

import pydicom
from pydicom import config as pydicom_config
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement

_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_META_START = 132  # 128-byte preamble + "DICM"
_GROUP_LENGTH_ELEMENT = 12  # (0002,0000) UL in explicit VR little endian: tag, VR, length, value
_UNDEFINED = 0xFFFFFFFF


def _meta_end(ds: pydicom.Dataset) -> int | None:
    """Byte offset where the file meta header ends, from its group length (None: not recorded)."""
    group_length = getattr(ds, "file_meta", pydicom.Dataset()).get("FileMetaInformationGroupLength")
    return None if group_length is None else _META_START + _GROUP_LENGTH_ELEMENT + int(group_length)


def truncation(path: str | os.PathLike, ds: pydicom.Dataset) -> str | None:
    """Why the file ends before its data do ("truncated: ..."), or None when it is whole.

    Call it on the dataset :func:`pydicom.dcmread` just returned for ``path`` (its elements still raw).
    The only extra reading is a second, strict parse of a file whose dataset came back empty.
    """
    size = os.path.getsize(path)
    if (
        str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
        == pydicom.uid.DeflatedExplicitVRLittleEndian
    ):
        return None  # its elements' offsets count in the inflated stream, not in the file
    meta_end = _meta_end(ds)
    if meta_end is not None and size < meta_end:
        return f"truncated: the file ends at byte {size}, inside its file meta header"
    last_end = None
    for tag in ds.keys():
        elem = ds.get_item(tag)
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED or elem.value_tell is None:
            continue
        end = elem.value_tell + elem.length
        if end > size:
            what = "its pixel data" if tag == 0x7FE00010 else f"element {keyword_for_tag(tag) or tag}"
            return f"truncated: the file ends after {size - elem.value_tell} of the {elem.length} bytes of {what}"
        last_end = end
    if any(t in ds for t in _PIXEL_TAGS):
        return None
    if last_end is not None and 0 < size - last_end < 8:  # less than an element header left
        return f"truncated: the file ends {size - last_end} byte(s) into an element's header, before its pixel data"
    if len(ds) == 0 and meta_end is not None and size > meta_end:
        try:
            with pydicom_config.strict_reading():  # raises the EOFError that lenient reading only warns of
                pydicom.dcmread(path)
        except EOFError:
            return "truncated: the file ends inside an element of undefined length (its encapsulated pixel data?)"
        except Exception:  # another defect: the caller reports it as it is
            return None
    return None
