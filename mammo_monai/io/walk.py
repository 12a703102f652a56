"""Find the files to read: walk folder trees, reporting what cannot be walked instead of skipping it
silently, and pick out the mammograms (DICOM, PNG, PGM, TIFF)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mammo_monai.io.raster import RASTER_SUFFIXES
from mammo_monai.io.reader import DICOM_SUFFIXES, is_dicom
from mammo_monai.io.sniff import skip_reason


def walk_files(
    root: str | os.PathLike, errors: list[dict[str, str]], keep: Callable[[str], bool] | None = None
) -> list[Path]:
    """Every file below ``root`` (sorted), following folder symlinks once; hidden names (``.x``, and
    the ``._x.dcm`` resource forks macOS leaves beside copied files) are left out.

    Problems become rows of ``errors`` instead of being skipped silently: a folder that cannot be
    read (``os.walk``'s ``onerror``), a symlink that leads back to a folder above it (a loop) or to
    a folder already read, a broken file symlink, and a file ``keep`` leaves out that may be an image
    the user expects to be read (compressed, another image format, unknown binary content:
    :func:`~mammo_monai.io.sniff.skip_reason`).

    Args:
        root: the folder to walk.
        errors: list the ``{"file", "reason"}`` rows are appended to.
        keep: optional filter on the file name (e.g. ``lambda n: n.lower().endswith(".dcm")``).
    """

    def unreadable(err: OSError) -> None:
        errors.append(
            {"file": str(err.filename or root), "reason": f"folder cannot be read ({err.strerror or err}); skipped"}
        )

    seen = {os.path.realpath(root)}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        here = os.path.realpath(dirpath)
        for name in sorted(dirnames):
            if name.startswith("."):
                dirnames.remove(name)
                continue
            sub = os.path.join(dirpath, name)
            real = os.path.realpath(sub)
            link = os.path.islink(sub)
            if link and (here == real or here.startswith(real.rstrip(os.sep) + os.sep)):
                errors.append({"file": sub, "reason": f"symlink loop: points back to {real}; not followed"})
            elif real in seen:
                if link:
                    errors.append({"file": sub, "reason": f"symlink to a folder already read ({real}); not read twice"})
            else:
                seen.add(real)
                continue
            dirnames.remove(name)
        dirnames.sort()
        for name in filenames:
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.exists(path):
                errors.append({"file": path, "reason": "broken symlink; skipped"})
            elif keep is None or keep(name):
                found.append(Path(path))
            else:
                report_skipped(path, errors)
    return sorted(found)


def report_skipped(path: str | os.PathLike, errors: list[dict[str, str]]) -> None:
    """Append a row for a file left out of a walk when it may be an image (:func:`skip_reason`)."""
    reason = skip_reason(path)
    if reason is not None:
        errors.append({"file": str(path), "reason": f"{reason}; skipped"})


def _is_image(path: Path) -> bool:
    """A DICOM / PNG / PGM / TIFF suffix, or the DICOM marker under any other name (TCIA's bare names, .IMA)."""
    return path.suffix.lower() in DICOM_SUFFIXES + RASTER_SUFFIXES or is_dicom(path)


def find_images(
    inputs: Iterable[str | os.PathLike], problems: list[dict[str, str]] | None = None
) -> list[tuple[Path, str]]:
    """Expand files and folders into (file, output name) pairs.

    Files named on the command line are always taken (an unknown type becomes an error row later);
    inside folders, files with a DICOM/PNG/PGM/TIFF suffix and DICOMs under any other name (as TCIA
    ships them, without suffix) are taken; text (CSV, XML, notes) and documents are left alone, and
    what may be an image that is not read (compressed, another format, unknown binary content) becomes
    a row of ``problems`` (:func:`~mammo_monai.io.sniff.skip_reason`). Output names are the path
    below the given folder with ``__`` for ``/``, so the many ``1-1.dcm`` of a TCIA download do not
    collide; a remaining clash gets a short hash of the full path. Symbolic-link loops and folders
    that cannot be read are appended to ``problems`` (``{"file", "reason"}`` rows) when given.
    """
    found: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            rows = problems if problems is not None else []
            for f in walk_files(p, rows):
                if _is_image(f):
                    found.append((f, "__".join(f.relative_to(p).with_suffix("").parts)))
                else:
                    report_skipped(f, rows)
        else:
            found.append((p, p.stem))
    seen: dict[str, int] = {}
    for _, name in found:
        seen[name] = seen.get(name, 0) + 1
    return [
        (f, f"{name}-{hashlib.sha1(str(f.resolve()).encode()).hexdigest()[:8]}" if seen[name] > 1 else name)
        for f, name in found
    ]


def find_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Files to predict: a file, a folder (searched recursively for mammograms) or a list of both."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    files = [str(f) for f, _ in find_images(items)]
    if not files:
        raise FileNotFoundError(f"{inputs}: no DICOM / PNG / PGM / TIFF file found")
    return files
