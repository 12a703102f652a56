"""SE-ResNeXt for the screening recipe: one grey channel, one logit, ImageNet weights from a local file."""

from __future__ import annotations

import re

import pytest
import torch
from monai.networks.nets import SEResNext50

from mammo_monai.networks import screening_seresnext
from mammo_monai.networks.seresnext import monai_key

#: MONAI name -> Cadene pretrainedmodels name (the inverse of what the loader maps), written out by hand
TO_CADENE = (
    (r"^(layer\d\.\d+\.)conv(\d)\.conv\.(\w+)$", r"\1conv\2.\3"),
    (r"^(layer\d\.\d+\.)conv(\d)\.adn\.N\.(\w+)$", r"\1bn\2.\3"),
    (r"^(layer\d\.\d+\.)se_layer\.fc\.0\.(\w+)$", r"\1se_module.fc1.\2"),
    (r"^(layer\d\.\d+\.)se_layer\.fc\.2\.(\w+)$", r"\1se_module.fc2.\2"),
    (r"^(layer\d\.\d+\.)project\.conv\.(\w+)$", r"\1downsample.0.\2"),
    (r"^(layer\d\.\d+\.)project\.adn\.N\.(\w+)$", r"\1downsample.1.\2"),
)


def _cadene(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for pattern, repl in TO_CADENE:
            if re.match(pattern, key):
                new = re.sub(pattern, repl, key)
                out[new] = value[..., None, None] if ".se_module." in new and new.endswith("weight") else value
                break
        else:
            out[key] = value
    return out


def test_cadene_names_map_to_monai_names():
    assert monai_key("layer1.0.conv2.weight") == "layer1.0.conv2.conv.weight"
    assert monai_key("layer3.5.bn1.running_var") == "layer3.5.conv1.adn.N.running_var"
    assert monai_key("layer2.0.se_module.fc1.bias") == "layer2.0.se_layer.fc.0.bias"
    assert monai_key("layer4.0.downsample.1.weight") == "layer4.0.project.adn.N.weight"
    assert monai_key("layer0.conv1.weight") == "layer0.conv1.weight"


@pytest.mark.parametrize("layout", ["monai", "cadene"])
def test_imagenet_file_loads_with_grey_stem_and_own_classifier(tmp_path, layout):
    torch.manual_seed(0)
    rgb = SEResNext50(spatial_dims=2, in_channels=3, num_classes=1000)
    state = rgb.state_dict() if layout == "monai" else _cadene(rgb.state_dict())
    torch.save(state, tmp_path / "imagenet.pth")
    net = screening_seresnext("seresnext50", out_channels=1, pretrained_weights=tmp_path / "imagenet.pth")
    assert torch.equal(net.layer0.conv1.weight, rgb.layer0.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(net.layer3[2].se_layer.fc[0].weight, rgb.layer3[2].se_layer.fc[0].weight)
    assert net.last_linear.out_features == 1
    net.eval(), rgb.eval()
    grey = torch.rand(1, 1, 64, 64)
    with torch.no_grad():  # same features: the grey stem sees what the RGB stem sees on grey x 3
        assert torch.allclose(net.features(grey), rgb.features(grey.repeat(1, 3, 1, 1)), atol=1e-4)


def test_wrong_weights_file_is_a_clear_error(tmp_path):
    torch.save({"layer0.conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth: not SE-ResNeXt weights"):
        screening_seresnext("seresnext-tiny", pretrained_weights=tmp_path / "other.pth")
