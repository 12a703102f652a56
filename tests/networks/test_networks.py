from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mammo_monai.networks import WholeImageClassifier, load_torchvision_weights, patch_resnet


def test_resnet50_has_torchvision_layout_and_flops():
    net = patch_resnet("resnet50", num_classes=1000, in_channels=3).eval()
    names = list(net.state_dict())
    assert sum(p.numel() for p in net.parameters()) == 25_557_032  # torchvision resnet50
    assert len(names) == 320 and names[:2] == ["conv1.weight", "bn1.weight"]
    assert "layer1.0.downsample.0.weight" in names and "layer1.0.downsample.0.bias" not in names
    assert net.conv1.stride == (2, 2) and isinstance(net.maxpool, torch.nn.MaxPool2d)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.rand(1, 3, 224, 224))
    assert 4.0e9 < counter.get_total_flops() / 2 < 4.2e9  # multiply-adds, ~4.1 G as in the paper


def test_imagenet_state_dict_file_loads_strictly_with_grey_stem(tmp_path):
    torch.manual_seed(0)
    imagenet = patch_resnet("resnet50", num_classes=1000, in_channels=3)
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    grey = patch_resnet("resnet50", num_classes=5, in_channels=1, pretrained_weights=None)
    loaded = load_torchvision_weights(grey, path)
    assert loaded == 320 - 2  # everything but the 1000-class fc
    assert torch.allclose(grey.conv1.weight, imagenet.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(grey.layer4[2].conv3.weight, imagenet.layer4[2].conv3.weight)
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        grey.eval(), imagenet.eval()
        feats = lambda n, t: n.layer4(n.layer3(n.layer2(n.layer1(n.maxpool(n.act(n.bn1(n.conv1(t))))))))  # noqa: E731
        assert torch.allclose(feats(grey, x), feats(imagenet, x.repeat(1, 3, 1, 1)), atol=1e-4)


def test_state_dict_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(patch_resnet("resnet18", num_classes=1000, in_channels=3).state_dict(), path)
    with pytest.raises(ValueError, match="r18.pth: not a state_dict of this architecture"):
        patch_resnet("resnet50", pretrained_weights=path)


def test_whole_image_classifier_copies_and_counts_the_backbone(tmp_path):
    patch = patch_resnet("resnet10-tiny")
    ckpt = tmp_path / "patch.pt"
    torch.save(patch.state_dict(), ckpt)
    net = WholeImageClassifier("resnet10-tiny", patch_checkpoint=ckpt)
    backbone_keys = [k for k in patch.state_dict() if not k.startswith("fc.")]
    assert net.load_patch_weights(ckpt) == len(backbone_keys)
    assert torch.equal(net.backbone.layer4[0].conv1.weight, patch.layer4[0].conv1.weight)
    first = net.top[0][0]
    assert first.conv2.stride == (2, 2) and isinstance(first.downsample[1], torch.nn.BatchNorm2d)
    assert first.conv3.out_channels == 2 * first.conv1.out_channels  # expansion 2: 512 -> 512 -> 1024 at full width
    assert net(torch.rand(2, 1, 96, 64)).shape == (2, 2)


def test_whole_image_at_paper_width_has_512_512_1024_top():
    net = WholeImageClassifier("resnet50")
    block = net.top[1][0]
    assert (block.conv1.out_channels, block.conv2.out_channels, block.conv3.out_channels) == (512, 512, 1024)
    assert net.fc.in_features == 1024


def test_backbone_that_does_not_fit_fails_loudly(tmp_path):
    ckpt = tmp_path / "other.pt"
    torch.save({"model": {"module." + k: v for k, v in patch_resnet("resnet18-narrow").state_dict().items()}}, ckpt)
    assert WholeImageClassifier("resnet18-narrow").load_patch_weights(ckpt) > 0  # prefixes are handled
    with pytest.raises(ValueError, match="patch backbone did not load"):
        WholeImageClassifier("resnet10-tiny", patch_checkpoint=ckpt)
