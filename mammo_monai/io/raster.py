"""Read and write PNG / PGM / TIFF mammograms with Pillow; 16-bit PNG output written atomically."""

from __future__ import annotations

import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mammo_monai.io.atomic import atomic_path
from mammo_monai.io.errors import MammogramError
from mammo_monai.io.limits import check_pixels, too_large
from mammo_monai.io.naming import parse_path

RASTER_SUFFIXES = (".png", ".pgm", ".pnm", ".tif", ".tiff")
COMMON_BIT_DEPTHS = (8, 10, 12, 14, 16)
#: Pillow's PNG options for every PNG this package writes: deflate restricted to run-length matches
#: (``zlib.Z_RLE``; with it the level only tells 0 from not 0) after PNG's per-row filters. On 16-bit
#: mammograms it encodes about 40 % faster than Pillow's default (level 6, default strategy) at the same
#: size, and decodes as fast; still a plain lossless PNG for every reader (scripts/bench_prepare.py).
PNG_OPTIONS: dict[str, int] = {"compress_level": 1, "compress_type": zlib.Z_RLE}


def inferred_bit_depth(maximum: float, container_bits: int) -> int:
    """The bit depth the data use: the smallest common depth (8, 10, 12, 14, 16) holding ``maximum``.

    Full-field exports often store 10-, 12- or 14-bit detector values in a 16-bit PNG or TIFF; scaled
    by the container's 65535 a 12-bit image would never exceed 0.0625. Never more than the container.
    """
    needed = int(np.ceil(np.log2(max(float(maximum), 1.0) + 1.0)))
    for bits in COMMON_BIT_DEPTHS:
        if bits >= needed:
            return min(bits, container_bits)
    return container_bits


def read_raster(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an 8/16-bit greyscale PNG, PGM (MIAS) or TIFF as float32 (1, H, W), rows first.

    Colour files are converted to grey (luma). Laterality and view come from the file name only.
    ``meta["intensity_range"]`` is the range of the bit depth the data use (:func:`inferred_bit_depth`:
    a 16-bit PNG whose maximum is 4095 holds 12-bit data, range 0..4095); ``meta["container_range"]``
    is the file type's full range (0..65535), the right one for images this package wrote itself.

    Raises:
        MammogramError: naming the file, when it is missing, not a readable image, or larger than the
            pixel limit (:mod:`mammo_monai.io.limits`, checked from the header before decoding).
    """
    if not os.path.isfile(path):
        raise MammogramError(path, "file not found")
    try:
        with warnings.catch_warnings():  # Pillow warns between its limit and twice it: refused below instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:  # over twice the limit: Pillow refuses before telling the size
        raise too_large(path, None) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise MammogramError(path, f"cannot read image ({type(err).__name__}: {err})") from None
    with im:
        check_pixels(path, im.height, im.width)
        try:
            im.load()
            if im.mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr"):
                im = im.convert("L")
            arr = np.asarray(im)
            fmt = im.format or Path(path).suffix.lstrip(".").upper()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise MammogramError(path, f"cannot read image ({type(err).__name__}: {err})") from None
    if arr.ndim != 2:
        raise MammogramError(path, f"expected a 2D greyscale image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        container = 8
    elif arr.dtype == np.uint16 or (arr.dtype.kind in "iu" and arr.max(initial=0) <= 65535 and arr.min(initial=0) >= 0):
        container = 16
    elif arr.dtype == bool:
        container, arr = 1, arr.astype(np.uint8)
    else:
        container = 0
    bits = inferred_bit_depth(arr.max(initial=0), container) if container > 8 else container
    lo, hi = (0.0, float(2**bits - 1)) if bits else (float(arr.min()), float(arr.max()))
    side, view = parse_path(path)
    meta = {
        "source_path": str(path),
        "format": fmt.lower(),
        "laterality": side,
        "view": view,
        "pixel_spacing": [float("nan"), float("nan")],
        "bits_stored": bits,
        "container_bits": container,
        "photometric_interpretation": "MONOCHROME2",
        "transfer_syntax": "",
        "voi_applied": False,
        "intensity_range": [lo, hi],
        "container_range": [0.0, float(2**container - 1)] if container else [lo, hi],
        "original_shape": [int(arr.shape[0]), int(arr.shape[1])],
    }
    return arr.astype(np.float32)[None], meta


def atomic_write_png(path: str | os.PathLike, array: np.ndarray, **options: int) -> None:
    """Write a 2D uint8/uint16 array as PNG through a temporary file in the same folder, then rename.

    A crash leaves either the previous file or no file, never a truncated PNG.

    Args:
        options: Pillow PNG options over :data:`PNG_OPTIONS` (``compress_level``, ``compress_type``).
    """
    path = Path(path)
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"{path}: PNG needs uint8 or uint16, got {arr.dtype}")
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG", **{**PNG_OPTIONS, **options})


def to_uint16(image: np.ndarray) -> np.ndarray:
    """Map a [0, 1] float image to uint16 (values outside are clipped)."""
    return np.round(np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) * 65535.0).astype(np.uint16)
