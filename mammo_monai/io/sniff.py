"""Why a file found in a folder is not read, when it may be an image a user expects to be read.

Folder walks take DICOM, PNG, PGM and TIFF files. Of the rest, text (CSV, XML, notes) and binary
files with a document's suffix (PDF, spreadsheets) are left alone in silence; a compressed file, an
image in another format, or a binary of unknown content without a document's suffix is reported with
the reason. Compressed files are not unpacked here: an archive may hold a whole dataset, unpacking is
one command for the user, and reading through the compression on every run would cost its time again
each time and tie the manifest's paths to files that are not the images themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

# leading bytes of compressed files and archives
COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"(\xb5/\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
}
COMPRESSED_SUFFIXES = {".gz": "gzip", ".tgz": "gzip", ".zip": "zip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd"}
COMPRESSED_SUFFIXES |= {".7z": "7z", ".rar": "rar", ".tar": "tar"}
# leading bytes of the formats this package reads (a file of one under a name that is not taken)
READ_FORMATS = {b"\x89PNG\r\n\x1a\n": "PNG", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"P5": "PGM", b"P2": "PGM"}
# leading bytes of image formats this package does not read
OTHER_IMAGES = {
    b"\xff\xd8\xff": "JPEG",
    b"\xffO\xffQ": "JPEG 2000",
    b"\x00\x00\x00\x0cjP  ": "JPEG 2000",
    b"GIF8": "GIF",
    b"BM": "BMP",
}
# binary files that are documents, not images (some are zip containers: checked before the magic)
DOCUMENT_SUFFIXES = frozenset(
    ".pdf .xls .xlsx .ods .doc .docx .odt .ppt .pptx .rtf .parquet .feather .db .sqlite .pkl .pickle .pt .pth "
    ".onnx .ts .npz .h5 .hdf5 .json .roi .exe .so .dll".split()
)
_HEAD = 512


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_HEAD)


def skip_reason(path: str | os.PathLike) -> str | None:
    """Why a file that a folder walk does not take should be reported, or None to leave it in silence.

    Returns e.g. "compressed with gzip: unpack it first", "a JPEG image, a format not read here (DICOM, PNG, PGM
    or TIFF only): convert it", "a DICOM file under a name that is not taken (.ima)", "unknown content
    (not DICOM, PNG, PGM or TIFF)", "empty file", or "cannot be read (...)".
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in DOCUMENT_SUFFIXES:
        return None
    try:
        head = _head(path)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    for magic, kind in COMPRESSED.items():
        if head.startswith(magic):
            return f"compressed with {kind}: unpack it first"
    if head[257:262] == b"ustar" or suffix in COMPRESSED_SUFFIXES:
        return f"compressed with {COMPRESSED_SUFFIXES.get(suffix, 'tar')}: unpack it first"
    kind = next((k for m, k in READ_FORMATS.items() if head.startswith(m)), "")
    if head[128:132] == b"DICM":
        kind = "DICOM"
    elif kind == "PGM" and not head[2:3].isspace():  # "P5" then whitespace; else text that starts so
        kind = ""
    if kind:
        return f"a {kind} file under a name that is not taken ({suffix or 'no suffix'})"
    for magic, kind in OTHER_IMAGES.items():
        if head.startswith(magic) and (kind != "BMP" or b"\x00" in head[:64]):
            return f"a {kind} image, a format not read here (DICOM, PNG, PGM or TIFF only): convert it"
    if not head:
        return "empty file" if not suffix else None
    if b"\x00" not in head:  # text: notes, tables, XML
        return None
    return "unknown content (not DICOM, PNG, PGM or TIFF)"
