"""Uploaded files into a private folder, by content: no name or path from a client touches the file system.

Each upload is written as ``u<file><suffix>`` (``file``: its position in the request, from 1) in a folder only
this process can read (``mkdtemp``, mode 0700), deleted after the response; the suffix comes from the file's
leading bytes (DICOM's ``DICM`` marker, the PNG / TIFF / PGM signatures of :mod:`mammo_monai.io.sniff`), never
from its name. What is not one of them is refused with :func:`~mammo_monai.io.sniff.skip_reason`'s reason.
Pixel-count limits (the decompression-bomb guard of :mod:`mammo_monai.io.limits`) are checked by the readers
from the header, before any pixel is decoded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import BinaryIO

from mammo_monai.io.sniff import READ_FORMATS, skip_reason

#: the file suffix each readable kind is stored under (what the readers dispatch on)
SUFFIXES = {"DICOM": ".dcm", "PNG": ".png", "TIFF": ".tif", "PGM": ".pgm"}
_HEAD = 512
_CHUNK = 1 << 20


def content_kind(head: bytes) -> str | None:
    """ "DICOM", "PNG", "TIFF" or "PGM" from a file's first bytes, else None."""
    if head[128:132] == b"DICM":
        return "DICOM"
    kind = next((k for magic, k in READ_FORMATS.items() if head.startswith(magic)), None)
    if kind == "PGM" and not head[2:3].isspace():  # "P5" + whitespace; text that starts with P5 is not
        return None
    return kind


def client_label(name: str | None, file: int) -> str:
    """The name an upload is given back under when its client asks (``echo_names``): the base name the client
    sent (never logged nor used as a path), else ``file <file>`` (its position in the request, from 1)."""
    base = PurePath((name or "").replace("\\", "/")).name.strip()
    return base[:120] if base else f"file {file}"


@contextmanager
def private_folder() -> Iterator[Path]:
    """A fresh folder readable by this process only, removed with everything in it on exit."""
    folder = Path(tempfile.mkdtemp(prefix="mammo-serve-"))
    try:
        os.chmod(folder, 0o700)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def store_upload(source: BinaryIO, folder: Path, file: int) -> tuple[Path | None, str | None]:
    """Copy one uploaded stream into ``folder`` under a name chosen here; returns (path, None) for a readable
    kind, else (None, the reason it is refused)."""
    raw = folder / f"u{file}.upload"
    with open(raw, "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)
    with open(raw, "rb") as fh:
        head = fh.read(_HEAD)
    kind = content_kind(head)
    if kind is None:
        reason = skip_reason(raw) or "not an image: text or unknown content (expected DICOM, PNG, PGM or TIFF)"
        raw.unlink()
        return None, reason.replace(" (.upload)", "")
    path = raw.rename(folder / f"u{file}{SUFFIXES[kind]}")
    return path, None
