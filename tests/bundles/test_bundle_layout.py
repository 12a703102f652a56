"""Every bundle has the Model Zoo layout and the metadata fields MONAI requires."""

from __future__ import annotations

import json

import pytest

from mammo_monai.bundle_names import skeleton_files
from tests.conftest import BUNDLES

BUNDLE_NAMES = sorted(p.name for p in BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file())
#: the fields MONAI's bundle metadata schema requires (checked offline: the schema itself is a download)
REQUIRED_METADATA = [
    "version",
    "changelog",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
]
REQUIRED_TENSOR = ["type", "format", "num_channels", "spatial_shape", "dtype", "value_range"]


def test_the_five_bundles_are_found():
    assert BUNDLE_NAMES == [
        "efficientnet_classifier",
        "lesion_segmentation",
        "patch_classifier",
        "screening_classifier",
        "whole_image_classifier",
    ]


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_metadata_has_the_fields_monai_requires(name):
    meta = json.loads((BUNDLES / name / "configs" / "metadata.json").read_text())
    assert [k for k in REQUIRED_METADATA if k not in meta] == []
    assert meta["version"] in meta["changelog"]
    for part in ("inputs", "outputs"):
        for tensor in meta["network_data_format"][part].values():
            assert [k for k in REQUIRED_TENSOR if k not in tensor] == []
    shared = [f.name for f in skeleton_files()]  # common_train.yaml, multi_gpu_train.yaml, logging.conf, ...
    for f in ("train.yaml", "evaluate.yaml", "inference.yaml", "demo.yaml", *shared):
        assert (BUNDLES / name / "configs" / f).is_file()
    assert (BUNDLES / name / "docs" / "README.md").is_file() and (BUNDLES / name / "LICENSE").is_file()
