"""Datasets -> one manifest: adapters, patient-grouped splits, the preprocessing cache, patch sets."""

from mammo_monai.data.adapters import ADAPTERS, AdapterResult
from mammo_monai.data.cache_record import CacheMismatchError, preprocessing_settings, read_record, read_settings
from mammo_monai.data.manifest import (
    IMAGE_COLUMNS,
    LESION_COLUMNS,
    ManifestError,
    read_manifest,
    validate,
    write_manifest,
)
from mammo_monai.data.preprocessing_settings import PREPROCESSING_VERSION, PreprocessingSettings
from mammo_monai.data.splits import assign_splits

__all__ = [
    "ADAPTERS",
    "IMAGE_COLUMNS",
    "LESION_COLUMNS",
    "AdapterResult",
    "CacheMismatchError",
    "ManifestError",
    "PREPROCESSING_VERSION",
    "PreprocessingSettings",
    "assign_splits",
    "preprocessing_settings",
    "read_record",
    "read_settings",
    "read_manifest",
    "validate",
    "write_manifest",
]
