"""What made a cache: the settings and code version of its preprocessing, recorded beside it and
checked on every re-run, so that a cache never silently serves images made differently."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from mammo_monai.io.atomic import remove_stale_parts, write_json

CACHE_RECORD = "cache.json"
# what changes the pixels of a cached image; the split and the labels are re-derived on every run
PREPROCESSING_KEYS = ("size", "keep_aspect", "crop", "intensity", "threshold", "modalities", "preprocessing_version")
DEFAULT_OPTIONS: dict[str, Any] = {
    "keep_aspect": False,
    "crop": False,
    "intensity": "bit_depth",
    "threshold": 0.05,
    "modalities": ["MG"],
}


class CacheMismatchError(ValueError):
    """A cache folder made with other preprocessing settings (or code) than the ones asked for."""


@lru_cache(maxsize=1)
def preprocessing_version() -> str:
    """A short hash of the code that turns a file into a cached image (readers, transforms, cache).

    Changing any of it changes the version, and a cache made by the old code is refused.
    """
    pkg = Path(__file__).resolve().parents[1]
    files = sorted([*(pkg / "io").glob("*.py"), *(pkg / "transforms").glob("*.py"), pkg / "data" / "cache.py"])
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(pkg).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def preprocessing_settings(size: Sequence[int], options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything that decides a cached image's pixels: size, aspect, crop, intensity scaling, mask
    threshold, accepted modalities and the code version. Inference must redo exactly this."""
    merged = {**DEFAULT_OPTIONS, **dict(options or {})}
    unknown = sorted(set(merged) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown preprocessing option(s) {unknown}; known: {sorted(DEFAULT_OPTIONS)}")
    mods = merged["modalities"]
    return {
        "size": [int(size[0]), int(size[1])],
        "keep_aspect": bool(merged["keep_aspect"]),
        "crop": bool(merged["crop"]),
        "intensity": str(merged["intensity"]),
        "threshold": float(merged["threshold"]),
        "modalities": sorted(str(m).upper() for m in mods) if mods is not None else None,
        "preprocessing_version": preprocessing_version(),
    }


def transform_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`~mammo_monai.transforms.preprocess_transforms` for ``settings``."""
    return {k: settings[k] for k in ("keep_aspect", "crop", "intensity", "threshold") if k in settings}


def read_record(out_dir: str | os.PathLike, record: str = CACHE_RECORD) -> dict[str, Any] | None:
    """The recorded settings of a cache folder, or None when it has none."""
    path = Path(out_dir) / record
    return json.loads(path.read_text()) if path.is_file() else None


def differences(old: Mapping[str, Any], new: Mapping[str, Any], keys: Sequence[str] = PREPROCESSING_KEYS) -> list[str]:
    """``"size [96, 72] -> [64, 48]"`` for every one of ``keys`` whose value differs between two records."""
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def claim_cache(
    out_dir: str | os.PathLike,
    settings: Mapping[str, Any],
    rebuild: bool = False,
    cached_dirs: Sequence[str] = ("images", "lesions"),
    record: str = CACHE_RECORD,
    has_outputs: bool | None = None,
    flag: str = "--rebuild",
) -> bool:
    """Make ``out_dir`` a cache of ``settings``: check a previous record, then write the new one.

    A folder that already holds cached images made with other settings (or by other code, or with no
    record at all) is refused with one message that lists the differences; with ``rebuild`` its cached
    images are deleted first. The record is written before any image, so a killed run leaves a cache
    whose record tells the truth; the temporaries a killed run left in ``out_dir`` and ``cached_dirs``
    are deleted (:func:`~mammo_monai.io.atomic.remove_stale_parts`). Returns True when earlier cached
    images were kept.

    Args:
        cached_dirs: sub-folders holding the cached outputs (deleted on ``rebuild``).
        record: file name of the record.
        has_outputs: whether earlier outputs exist, when the caller knows better than ``cached_dirs``.
        flag: the command-line option that allows replacing them, for the message.

    Raises:
        CacheMismatchError: the cache was made differently and ``rebuild`` is False.
    """
    out = Path(out_dir)
    old = read_record(out, record)
    has_images = (
        has_outputs
        if has_outputs is not None
        else any((out / d).is_dir() and any((out / d).iterdir()) for d in cached_dirs)
    )
    if has_images:
        diffs = differences(old, settings) if old is not None else [f"no {record}: settings unknown"]
        if diffs:
            if not rebuild:
                raise CacheMismatchError(
                    f"{out}: the outputs there were made differently ({'; '.join(diffs)}); "
                    f"run again with {flag} to replace them, or choose another --out"
                )
            for d in cached_dirs:
                shutil.rmtree(out / d, ignore_errors=True)
            has_images = False
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, *(out / d for d in cached_dirs)):
        remove_stale_parts(folder)
    write_json(dict(settings), out / record)
    return has_images


def check_same_preprocessing(expected: Mapping[str, Any], actual: Mapping[str, Any] | None, what: str) -> None:
    """Refuse to feed a model images made differently from its training data.

    ``expected``: the model's recorded preprocessing; ``actual``: the cache's. Only the keys that
    change pixels are compared; the code version is left out (a model outlives code edits).

    Raises:
        CacheMismatchError: one line naming ``what`` and every difference.
    """
    if actual is None:
        return
    keys = [k for k in PREPROCESSING_KEYS if k != "preprocessing_version" and k in expected and k in actual]
    diffs = [f"{k}: model {expected[k]!r}, data {actual[k]!r}" for k in keys if expected[k] != actual[k]]
    if diffs:
        raise CacheMismatchError(
            f"{what}: the data were preprocessed differently from the model's training data "
            f"({'; '.join(diffs)}); prepare the data with the model's settings"
        )
