"""Unpack an exported bundle zip within limits, and say in one line why a bundle cannot be opened.

An exported bundle is a zip that other people send: it is unpacked only after its table of contents
passes two limits (:data:`MAX_BUNDLE_BYTES` in all, and no member larger than 1 MiB compressed more
than :data:`MAX_COMPRESSION_RATIO` : 1), members that would land outside the working folder are refused,
and every problem is a :class:`BundleError` that names the bundle as the user gave it.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath

#: the most a bundle zip may unpack to, in bytes (1 GiB: a ResNet50 whole-image bundle with
#: ``model.pt``, ``model.ts`` and ``model.onnx`` unpacks to about 0.4 GB); ``MAMMO_MONAI_MAX_BUNDLE_MB`` overrides
MAX_BUNDLE_BYTES = 1 << 30
#: the highest compression ratio of a member over :data:`RATIO_CHECKED_FROM` bytes (weights compress about
#: 1.1 : 1, text 3-10 : 1; a file of zeros 1000 : 1)
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM = 1 << 20
#: what a bundle must hold to be opened for inference
REQUIRED = ("configs/inference.yaml", "models/model.pt")


class BundleError(ValueError):
    """A bundle that cannot be opened: the message names the bundle as given and the problem, in one line."""

    def __init__(self, bundle: str | os.PathLike, problem: str) -> None:
        self.bundle, self.problem = str(bundle), " ".join(str(problem).split())
        super().__init__(f"{self.bundle}: {self.problem}")


def max_bundle_bytes() -> int:
    """:data:`MAX_BUNDLE_BYTES`, or ``MAMMO_MONAI_MAX_BUNDLE_MB`` megabytes when that is set."""
    mb = os.environ.get("MAMMO_MONAI_MAX_BUNDLE_MB")
    return int(float(mb) * (1 << 20)) if mb else MAX_BUNDLE_BYTES


def check_members(bundle: str | os.PathLike, members: list[zipfile.ZipInfo]) -> str:
    """The one top-level folder of a bundle zip after checking its table of contents.

    Raises:
        BundleError: no or several top-level folders, a member outside the folder, more than
            :func:`max_bundle_bytes` in all, or a member compressed beyond :data:`MAX_COMPRESSION_RATIO`.
    """
    files = [m for m in members if not m.is_dir()]
    if not files:
        raise BundleError(bundle, "the zip is empty")
    tops = sorted({PurePosixPath(m.filename).parts[0] for m in files})
    if len(tops) != 1 or any(len(PurePosixPath(m.filename).parts) < 2 for m in files):
        raise BundleError(bundle, f"expected one bundle folder in the zip, found {tops[:5]}")
    for m in files:
        path = PurePosixPath(m.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in m.filename:
            raise BundleError(bundle, f"zip member {m.filename!r} points outside the bundle folder")
        if m.file_size > RATIO_CHECKED_FROM and m.file_size > MAX_COMPRESSION_RATIO * max(m.compress_size, 1):
            raise BundleError(
                bundle,
                f"zip member {m.filename} unpacks to {m.file_size:,} bytes from {m.compress_size:,} "
                f"(over {MAX_COMPRESSION_RATIO}:1, a zip bomb?); not unpacked",
            )
    total, limit = sum(m.file_size for m in files), max_bundle_bytes()
    if total > limit:
        raise BundleError(
            bundle,
            f"the zip unpacks to {total:,} bytes, over the {limit:,}-byte limit for a bundle "
            "(MAMMO_MONAI_MAX_BUNDLE_MB raises it); not unpacked",
        )
    return tops[0]


def extract_bundle(bundle: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """Unpack the bundle zip ``bundle`` under ``workdir`` after :func:`check_members`; its folder.

    Every member is written through a counter, so a zip whose table of contents understates a member
    stops at the stated size; CRC errors and damaged data stop the unpacking.

    Raises:
        BundleError: not a zip, truncated or damaged, or refused by :func:`check_members`.
    """
    try:
        with zipfile.ZipFile(bundle) as zf:
            top = check_members(bundle, zf.infolist())
            for m in zf.infolist():
                target = Path(workdir, *PurePosixPath(m.filename).parts)
                if m.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as dst:
                    left = m.file_size
                    while chunk := src.read(min(1 << 20, left + 1)):
                        left -= len(chunk)
                        if left < 0:
                            raise BundleError(bundle, f"zip member {m.filename} is larger than its stated size")
                        dst.write(chunk)
    except BundleError:
        raise
    except zipfile.BadZipFile as err:
        size = os.path.getsize(bundle)
        raise BundleError(
            bundle,
            "an empty file, not a bundle zip" if size == 0 else f"not a readable zip (truncated or damaged?): {err}",
        ) from err
    except (zlib.error, EOFError, zipfile.LargeZipFile, NotImplementedError) as err:
        raise BundleError(bundle, f"damaged zip: {type(err).__name__}: {err}") from err
    return Path(workdir) / top
