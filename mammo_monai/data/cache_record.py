"""What made a cache: its preprocessing settings and declared preprocessing version
(:class:`~mammo_monai.data.preprocessing_settings.PreprocessingSettings`), recorded beside it and
checked on every re-run, so that a cache never silently serves images made differently."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mammo_monai.data.preprocessing_settings import RECORD_KEYS, VERSION_KEY, PreprocessingSettings
from mammo_monai.io.atomic import remove_stale_parts, write_json

CACHE_RECORD = "cache.json"
# what changes the pixels of a cached image; the split and the labels are re-derived on every run
PREPROCESSING_KEYS = RECORD_KEYS


class CacheMismatchError(ValueError):
    """A cache folder made with other preprocessing settings (or code) than the ones asked for."""


def preprocessing_settings(size: Sequence[int], options: Mapping[str, Any] | None = None) -> PreprocessingSettings:
    """Everything that decides a cached image's pixels: size, aspect, crop, intensity scaling, mask
    threshold, accepted modalities and the preprocessing version. Inference must redo exactly this.

    Raises:
        ValueError: an unknown option name or a bad value.
    """
    return PreprocessingSettings.from_options(size, options)


def read_record(out_dir: str | os.PathLike, record: str = CACHE_RECORD) -> dict[str, Any] | None:
    """The recorded settings of a cache folder, or None when it has none."""
    path = Path(out_dir) / record
    return json.loads(path.read_text()) if path.is_file() else None


def read_settings(out_dir: str | os.PathLike, record: str = CACHE_RECORD) -> PreprocessingSettings | None:
    """The preprocessing settings a cache folder recorded, or None when it has no record.

    Raises:
        ValueError: a recorded setting with a bad value, naming the record.
    """
    found = read_record(out_dir, record)
    if found is None:
        return None
    try:
        return PreprocessingSettings.from_record(found)
    except ValueError as err:
        raise ValueError(f"{Path(out_dir) / record}: {err}") from None


def _as_record(settings: PreprocessingSettings | Mapping[str, Any]) -> dict[str, Any]:
    return settings.to_record() if isinstance(settings, PreprocessingSettings) else dict(settings)


def differences(old: Mapping[str, Any], new: Mapping[str, Any], keys: Sequence[str] = PREPROCESSING_KEYS) -> list[str]:
    """``"size [96, 72] -> [64, 48]"`` for every one of ``keys`` whose value differs between two records.

    The preprocessing settings among ``keys`` are compared as :class:`PreprocessingSettings` (a key an
    old record lacks takes the value it had before it was recorded); any other key (``dataset``,
    ``root``) as it is recorded.
    """
    diffs = []
    if any(k in RECORD_KEYS for k in keys):
        try:
            before = PreprocessingSettings.from_record(old)
        except ValueError as err:
            diffs.append(f"recorded settings unusable: {err}")
        else:
            diffs += before.differences(PreprocessingSettings.from_record(new))
    return diffs + [
        f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if k not in RECORD_KEYS and old.get(k) != new.get(k)
    ]


def claim_cache(
    out_dir: str | os.PathLike,
    settings: PreprocessingSettings | Mapping[str, Any],
    rebuild: bool = False,
    cached_dirs: Sequence[str] = ("images", "lesions"),
    record: str = CACHE_RECORD,
    has_outputs: bool | None = None,
    flag: str = "--rebuild",
) -> bool:
    """Make ``out_dir`` a cache of ``settings``: check a previous record, then write the new one.

    ``settings``: the settings, or the whole record to write (settings plus the run's ``dataset``, ...).
    A folder that already holds cached images made with other settings (or another preprocessing
    version, or with no record at all) is refused with one message that lists the differences; with
    ``rebuild`` its cached images are deleted first. The record is written before any image, so a
    killed run leaves a cache whose record tells the truth; the temporaries a killed run left in
    ``out_dir`` and ``cached_dirs`` are deleted (:func:`~mammo_monai.io.atomic.remove_stale_parts`).
    Returns True when earlier cached images were kept.

    Args:
        cached_dirs: sub-folders holding the cached outputs (deleted on ``rebuild``).
        record: file name of the record.
        has_outputs: whether earlier outputs exist, when the caller knows better than ``cached_dirs``.
        flag: the command-line option that allows replacing them, for the message.

    Raises:
        CacheMismatchError: the cache was made differently and ``rebuild`` is False.
    """
    out = Path(out_dir)
    settings = _as_record(settings)
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


def check_same_preprocessing(
    expected: PreprocessingSettings | Mapping[str, Any],
    actual: PreprocessingSettings | Mapping[str, Any] | None,
    what: str,
) -> None:
    """Refuse to feed a model images made differently from its training data.

    ``expected``: the model's recorded preprocessing; ``actual``: the cache's (records or settings).
    Only the settings both recorded are compared; the version is left out (a model outlives code edits,
    and ``predict`` preprocesses with the code it runs).

    Raises:
        CacheMismatchError: one line naming ``what`` and every difference.
    """
    if actual is None:
        return
    expected, actual = _as_record(expected), _as_record(actual)
    keys = [k for k in RECORD_KEYS if k != VERSION_KEY and k in expected and k in actual]
    try:
        model = PreprocessingSettings.from_record(expected).to_record()
        data = PreprocessingSettings.from_record(actual).to_record()
    except ValueError as err:
        raise CacheMismatchError(f"{what}: recorded preprocessing unusable: {err}") from None
    diffs = [f"{k}: model {model[k]!r}, data {data[k]!r}" for k in keys if model[k] != data[k]]
    if diffs:
        raise CacheMismatchError(
            f"{what}: the data were preprocessed differently from the model's training data "
            f"({'; '.join(diffs)}); prepare the data with the model's settings"
        )
