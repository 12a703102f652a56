"""Each bundle's inference and evaluate configs: the shared parts are byte-identical copies of
``mammo_monai/bundle_skeleton``, a bundle's own files hold only its recipe's part, and ``metadata.json``
states what the network returns (logits), the declared ``output_activation`` turning them into probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SKELETON = ROOT / "mammo_monai" / "bundle_skeleton"
BUNDLES = sorted(p.parent.parent for p in (ROOT / "bundles").glob("*/configs/inference.yaml"))
COMMON = ("common_inference.yaml", "common_evaluate.yaml")


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
@pytest.mark.parametrize("common", COMMON)
def test_the_common_configs_are_byte_identical_copies_of_the_skeleton(bundle, common):
    assert (bundle / "configs" / common).read_bytes() == (SKELETON / common).read_bytes()


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
@pytest.mark.parametrize("common", COMMON)
def test_a_bundle_config_repeats_no_key_of_the_common_file_with_the_same_value(bundle, common):
    shared = yaml.safe_load((SKELETON / common).read_text())
    own = yaml.safe_load((bundle / "configs" / common.removeprefix("common_")).read_text())
    repeated = [k for k, v in own.items() if k in shared and shared[k] == v]
    assert not repeated, f"{bundle.name}: {repeated} repeat {common}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_metadata_says_logits_and_the_inference_config_declares_the_activation(bundle):
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    for name, tensor in meta["network_data_format"]["outputs"].items():
        assert (tensor["type"], tensor["value_range"], tensor["is_onehot"]) == ("logits", [], False), name
    declared = {
        **yaml.safe_load((SKELETON / "common_inference.yaml").read_text()),
        **yaml.safe_load((bundle / "configs" / "inference.yaml").read_text()),
    }
    assert declared["output_activation"] in ("softmax", "sigmoid")
    outputs = meta["network_data_format"]["outputs"]["pred"]
    assert (outputs["num_channels"] == 1) == (declared["output_activation"] == "sigmoid"), bundle.name
