"""One limit on the size of an image, the same for every format, checked before any pixel is decoded.

The limit is Pillow's decompression-bomb guard, ``PIL.Image.MAX_IMAGE_PIXELS`` (89,478,485 pixels by
default, e.g. 9459 x 9459; the largest digitised films are about 40 million). Pillow only warns up to
twice that; here every format is refused above it: PNG / PGM / TIFF from the size in the file's header
(before Pillow decodes it), DICOM from Rows x Columns x Number of Frames in its header (before pydicom
decodes the pixel data, which for a 20000 x 20000 RLE image took 2.9 GB). Set
``PIL.Image.MAX_IMAGE_PIXELS`` to another number (or None: no limit) to change it for both.
"""

from __future__ import annotations

import os

from PIL import Image

from mammo_monai.io.errors import MammogramError


def max_pixels() -> int | None:
    """The pixel limit in force now: ``PIL.Image.MAX_IMAGE_PIXELS`` (None: no limit)."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else int(limit)


def too_large(path: str | os.PathLike, pixels: int | None, shape: str = "") -> MammogramError:
    """The error for an image over the limit; ``shape`` (e.g. "20000 x 20000") when known."""
    size = f"{shape} = {pixels:,} pixels" if shape and pixels else f"{pixels:,} pixels" if pixels else "image"
    return MammogramError(
        path,
        f"{size} exceeds the pixel limit of {max_pixels() or 0:,}, a guard against decompression bombs; "
        "not decoded (set PIL.Image.MAX_IMAGE_PIXELS higher on purpose for a genuine image this large)",
    )


def check_pixels(path: str | os.PathLike, rows: int, columns: int, frames: int = 1) -> None:
    """Refuse an image of ``rows`` x ``columns`` (x ``frames``) over :func:`max_pixels`, before decoding it.

    Raises:
        MammogramError: naming the file, its size and the limit.
    """
    limit = max_pixels()
    pixels = int(rows) * int(columns) * max(int(frames), 1)
    if limit is not None and pixels > limit:
        shape = f"{rows} x {columns}" + (f" x {frames} frames" if frames > 1 else "")
        raise too_large(path, pixels, shape)
