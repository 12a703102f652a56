"""The one owner of the preprocessing settings: everything that decides a cached image's pixels.

A :class:`PreprocessingSettings` is made once (from the command line's options, or read back from a
cache's ``cache.json`` or a model's ``model_meta.json``), is recorded as JSON beside what it made
(:meth:`PreprocessingSettings.to_record`), builds the transforms that make the pixels
(:meth:`PreprocessingSettings.transforms`) and is compared with what a cache or a model recorded.

:data:`PREPROCESSING_VERSION` is a declared number: bump it in the change that alters the pixels
preprocessing makes from the same file and settings (a reader, mask, resize or scaling change). The
golden-pixel test (``tests/data/test_golden_pixels.py``) fails when the pixels change and the number
does not; editing a comment or upgrading the package changes neither, so a cache stays usable.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

#: bumped when preprocessing makes other pixels from the same file and settings (see the module docstring)
PREPROCESSING_VERSION = 1
#: the record key of the version (the key the caches have always used)
VERSION_KEY = "preprocessing_version"
#: the record keys that decide the pixels of a cached image, in the order they are recorded
RECORD_KEYS = ("size", "keep_aspect", "crop", "intensity", "threshold", "modalities", VERSION_KEY)
#: the options the command line (and :meth:`PreprocessingSettings.from_options`) may set
OPTION_NAMES = ("keep_aspect", "crop", "intensity", "threshold", "modalities")
DEFAULT_SIZE = (1152, 896)
#: what a record without the key was made with (every record so far holds all of them but the version)
OLD_DEFAULTS: dict[str, Any] = {
    "size": list(DEFAULT_SIZE),
    "keep_aspect": False,
    "crop": False,
    "intensity": "bit_depth",
    "threshold": 0.05,
    "modalities": ["MG"],
    VERSION_KEY: None,
}


def _intensity_modes() -> tuple[str, ...]:
    from mammo_monai.transforms.intensity import MODES  # torch and MONAI: imported when first needed

    return MODES


@dataclasses.dataclass(frozen=True)
class PreprocessingSettings:
    """The settings that decide a preprocessed image's pixels (:func:`~mammo_monai.transforms.preprocess_transforms`).

    Attributes:
        size: output (H, W) of the whole image.
        keep_aspect: pad (bottom and right, away from the chest wall) instead of stretching.
        crop: crop to the breast's bounding box before resizing.
        intensity: "bit_depth", "container" or "percentile".
        threshold: breast-mask tissue threshold, a fraction of the intensity range, in (0, 1).
        modalities: accepted DICOM Modality values (upper case, sorted); None accepts any.
        version: the :data:`PREPROCESSING_VERSION` the pixels were made with; a record from before
            versions were declared holds a code hash (a str) or nothing (None).
        patch_size: the side of the patches cut from these images (a patch set's record), else None.

    Raises:
        ValueError: one line naming the bad setting.
    """

    size: tuple[int, int] = DEFAULT_SIZE
    keep_aspect: bool = False
    crop: bool = False
    intensity: str = "bit_depth"
    threshold: float = 0.05
    modalities: tuple[str, ...] | None = ("MG",)
    version: int | str | None = PREPROCESSING_VERSION
    patch_size: int | None = None

    def __post_init__(self) -> None:
        size = tuple(self.size) if isinstance(self.size, Sequence) and not isinstance(self.size, str) else ()
        if len(size) != 2 or not all(_whole(v) and int(v) > 0 for v in size):
            raise ValueError(f"preprocessing size must be two positive whole numbers (H, W), got {self.size!r}")
        for name in ("keep_aspect", "crop"):
            if not isinstance(getattr(self, name), (bool, int)) or getattr(self, name) not in (0, 1):
                raise ValueError(f"preprocessing {name} must be true or false, got {getattr(self, name)!r}")
        if self.intensity not in _intensity_modes():
            raise ValueError(f"preprocessing intensity must be one of {_intensity_modes()}, got {self.intensity!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real):
            raise ValueError(f"preprocessing threshold must be a number in (0, 1), got {self.threshold!r}")
        if not 0 < float(self.threshold) < 1:
            raise ValueError(f"preprocessing threshold must lie in (0, 1), got {self.threshold!r}")
        mods = self.modalities
        if mods is not None:
            if isinstance(mods, str) or not mods or not all(isinstance(m, str) and m.strip() for m in mods):
                raise ValueError(
                    f"preprocessing modalities must be a list of DICOM Modality names or null, got {mods!r}"
                )
            mods = tuple(sorted(m.upper() for m in mods))
        if not (self.version is None or isinstance(self.version, str) or (_whole(self.version) and self.version > 0)):
            raise ValueError(f"preprocessing_version must be a positive whole number, got {self.version!r}")
        if self.patch_size is not None and not (_whole(self.patch_size) and int(self.patch_size) > 0):
            raise ValueError(f"patch_size must be a positive whole number, got {self.patch_size!r}")
        for name, value in (
            ("size", (int(size[0]), int(size[1]))),
            ("keep_aspect", bool(self.keep_aspect)),
            ("crop", bool(self.crop)),
            ("threshold", float(self.threshold)),
            ("modalities", mods),
            ("version", self.version if self.version is None or isinstance(self.version, str) else int(self.version)),
            ("patch_size", None if self.patch_size is None else int(self.patch_size)),
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(
        cls, size: Sequence[int] = DEFAULT_SIZE, options: Mapping[str, Any] | None = None
    ) -> PreprocessingSettings:
        """The settings of a new cache: ``size`` and the command line's options (:data:`OPTION_NAMES`),
        made with this code's :data:`PREPROCESSING_VERSION`.

        Raises:
            ValueError: an option name that is not one of :data:`OPTION_NAMES` (a typo), or a bad value.
        """
        options = dict(options or {})
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise ValueError(f"unknown preprocessing option(s) {unknown}; known: {sorted(OPTION_NAMES)}")
        return cls(size=tuple(size), **options)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PreprocessingSettings:
        """The settings a cache record (``cache.json``, ``preprocess.json``) or a model's recorded
        ``preprocessing`` holds.

        Tolerant of old records: a missing key takes the value it had before it was recorded
        (:data:`OLD_DEFAULTS`; a missing version is None, an old code hash is kept as the str it is).
        Keys that are not settings (``dataset``, ``root``, ``split_seed``, the patch set's ``scheme``,
        ...) are ignored: a record describes its run too, and those never change a pixel.

        Raises:
            ValueError: a recorded setting with a bad value (one line naming it).
        """
        values = {**OLD_DEFAULTS, **{k: v for k, v in record.items() if k in OLD_DEFAULTS}}
        return cls(
            size=values["size"],
            keep_aspect=values["keep_aspect"],
            crop=values["crop"],
            intensity=values["intensity"],
            threshold=values["threshold"],
            modalities=values["modalities"],
            version=values[VERSION_KEY],
            patch_size=record.get("patch_size"),
        )

    def to_record(self) -> dict[str, Any]:
        """The JSON a cache records (and a model's ``model_meta.json`` keeps under ``preprocessing``):
        :data:`RECORD_KEYS`, and ``patch_size`` when set."""
        record: dict[str, Any] = {
            "size": list(self.size),
            "keep_aspect": self.keep_aspect,
            "crop": self.crop,
            "intensity": self.intensity,
            "threshold": self.threshold,
            "modalities": list(self.modalities) if self.modalities is not None else None,
            VERSION_KEY: self.version,
        }
        if self.patch_size is not None:
            record["patch_size"] = self.patch_size
        return record

    def transform_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~mammo_monai.transforms.preprocess_transforms` (and of
        ``eval_transforms`` / ``train_transforms``): ``size`` and :data:`OPTION_NAMES`, as :meth:`to_record` writes them."""
        record = self.to_record()
        return {name: record[name] for name in ("size", *OPTION_NAMES)}

    def transforms(self, **kwargs: Any) -> Any:
        """The preprocessing ``Compose`` (file -> masked, chest-wall-left, resized, [0, 1] image and its mask).

        Args:
            kwargs: the other arguments of :func:`~mammo_monai.transforms.preprocess_transforms`
                (``image_key``, ``mask_key``, ``extra_mask_keys``, ``load``).
        """
        from mammo_monai.transforms.pipelines import preprocess_transforms

        return preprocess_transforms(**self.transform_options(), **kwargs)

    def differences(self, other: PreprocessingSettings) -> list[str]:
        """``"size [96, 72] -> [64, 48]"`` for every recorded setting that differs from ``self`` (old) to
        ``other`` (new); a version from before versions were declared gets a sentence of its own."""
        old, new = self.to_record(), other.to_record()
        diffs = [f"{k} {old[k]!r} -> {new[k]!r}" for k in RECORD_KEYS if k != VERSION_KEY and old[k] != new[k]]
        if old[VERSION_KEY] != new[VERSION_KEY]:
            diffs.append(version_change(old[VERSION_KEY], new[VERSION_KEY]))
        return diffs


def version_change(old: int | str | None, new: int | str | None) -> str:
    """What a change of the preprocessing version means, in a few words."""
    if isinstance(old, str) or old is None:
        made = f"code hash {old!r}" if old else "no version recorded"
        return f"preprocessing_version: made before preprocessing versions were declared ({made}), now {new!r}"
    return f"preprocessing_version {old!r} -> {new!r} (the code now makes other pixels)"


def _whole(value: Any) -> bool:
    """An integer (numpy's too) or a float without a fraction, not a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return isinstance(value, numbers.Integral) or float(value).is_integer()
