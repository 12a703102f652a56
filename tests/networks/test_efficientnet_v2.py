"""EfficientNetV2-S in torchvision's layout: keys, shapes and arithmetic against a fixture made from
torchvision's own code (scripts/torchvision_layout.py), ImageNet weights with a grey stem, the recipe's head."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mammo_monai.networks import IMAGENET_GREY, efficientnet_v2, resolve_weights
from mammo_monai.networks.efficientnet_v2 import MBConvBlock, StageSetting

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "efficientnet_v2_s_layout.json").read_text())


def _layout_script():
    """scripts/torchvision_layout.py: the rule that filled the reference network (torchvision not needed)."""
    spec = importlib.util.spec_from_file_location("torchvision_layout", ROOT / "scripts" / "torchvision_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rgb_imagenet_net():
    """V2-S as torchvision builds it for ImageNet: 3-channel stem, 1000 outputs."""
    return efficientnet_v2("efficientnetv2-s", out_channels=1000, in_channels=3).eval()


def test_v2_s_has_exactly_torchvision_keys_shapes_and_parameter_count(rgb_imagenet_net):
    ours = {k: list(v.shape) for k, v in rgb_imagenet_net.state_dict().items()}
    assert list(ours) == list(FIXTURE["state_dict"])  # same names in the same order
    assert ours == FIXTURE["state_dict"]
    assert sum(p.numel() for p in rgb_imagenet_net.parameters()) == FIXTURE["num_parameters"] == 21_458_488


def test_v2_s_computes_what_torchvision_computes(rgb_imagenet_net):
    script = _layout_script()
    rgb_imagenet_net.load_state_dict(script.synthetic_state(FIXTURE["state_dict"]), strict=True)
    with torch.no_grad():
        pooled = rgb_imagenet_net.pooled_features(script.reference_input(3, 64))[0]
    expected = torch.tensor(FIXTURE["reference"]["pooled_features"])
    torch.testing.assert_close(pooled, expected, rtol=1e-4, atol=1e-4)


def test_torchvision_imagenet_file_loads_with_a_grey_stem_and_a_new_one_logit_head(tmp_path):
    torch.manual_seed(0)
    published = {
        k: torch.randn(shape) if shape else torch.tensor(0, dtype=torch.long)
        for k, shape in FIXTURE["state_dict"].items()
    }
    path = tmp_path / "efficientnet_v2_s-dd5fe13b.pth"
    torch.save(published, path)
    net = efficientnet_v2("efficientnetv2-s", pretrained_weights=path, input_norm=IMAGENET_GREY)
    state = net.state_dict()
    assert torch.equal(state["features.0.0.weight"], published["features.0.0.weight"].sum(1, keepdim=True))
    body = [k for k in published if not k.startswith(("classifier.", "features.0.0."))]
    assert all(torch.equal(state[k], published[k]) for k in body)
    assert state["classifier.1.weight"].shape == (1, 1280)  # the recipe's own output, not ImageNet's
    del published["features.3.1.block.0.1.running_var"]
    torch.save(published, path)
    with pytest.raises(ValueError, match="not EfficientNetV2 weights.*1 missing"):
        efficientnet_v2("efficientnetv2-s", pretrained_weights=path)


def test_imagenet_means_torchvisions_published_file_hash_checked(tmp_path, monkeypatch):
    asked = []

    def offline(url, dst, hash_prefix=None, progress=True):
        asked.append((url, hash_prefix))
        raise OSError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match="efficientnet_v2_s-dd5fe13b.pth"):
        resolve_weights("imagenet", "efficientnetv2-s", cache_dir=tmp_path)
    assert asked == [(FIXTURE["weights_file"], "dd5fe13b")]


def test_recipe_head_is_selu_then_dropout_0_2_then_one_logit():
    net = efficientnet_v2("efficientnetv2-s")
    assert isinstance(net.head_activation, torch.nn.SELU)
    dropout, linear = net.classifier
    assert dropout.p == 0.2 and (linear.in_features, linear.out_features) == (1280, 1)
    assert net.features[0][0].in_channels == 1


def test_stochastic_depth_drops_whole_residual_branches_per_sample_only_in_training():
    torch.manual_seed(0)
    block = MBConvBlock(StageSetting(False, 4, 3, 1, 16, 16, 1), drop_prob=0.5).train()
    x = torch.randn(64, 16, 8, 8)
    branch = (block(x) - x).flatten(1).abs().amax(1)
    dropped = branch == 0
    assert 10 < int(dropped.sum()) < 54  # about half the samples keep only their input
    block.eval()
    torch.testing.assert_close(block(x), block.block(x) + x)


def test_tiny_variant_normalises_inside_the_stem_and_traces():
    torch.manual_seed(0)
    plain = efficientnet_v2("efficientnetv2-tiny").eval()
    normed = efficientnet_v2("efficientnetv2-tiny", input_norm=IMAGENET_GREY).eval()
    normed.load_state_dict(plain.state_dict(), strict=True)
    x = torch.rand(2, 1, 64, 64)
    mean, std = IMAGENET_GREY
    out = normed(x)
    assert out.shape == (2, 1)
    torch.testing.assert_close(out, plain((x - mean) / std))
    torch.testing.assert_close(torch.jit.trace(normed, x)(x), out)
    with pytest.raises(ValueError, match="unknown arch"):
        efficientnet_v2("efficientnetv2-xl")
