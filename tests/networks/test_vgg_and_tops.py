from __future__ import annotations

import pytest
import torch

from mammo_monai.networks import (
    IMAGENET_GREY,
    VGGBlock,
    WholeImageClassifier,
    arch_layers,
    load_vgg_weights,
    patch_network,
    patch_vgg,
)
from mammo_monai.training.stages import apply_stage

#: torchvision's vgg16: (features index, in, out) of the 13 3x3 convolutions (64, 64, M, 128, 128, M,
#: 256 x 3, M, 512 x 3, M, 512 x 3, M) and (classifier index, in, out) of the three linear layers
VGG16_CONVS = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (17, 256, 512),
    (19, 512, 512),
    (21, 512, 512),
    (24, 512, 512),
    (26, 512, 512),
    (28, 512, 512),
]
VGG16_LINEARS = [(0, 25088, 4096), (3, 4096, 4096), (6, 4096, 1000)]


def torchvision_vgg16_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i, cin, cout in VGG16_CONVS:
        shapes[f"features.{i}.weight"], shapes[f"features.{i}.bias"] = (cout, cin, 3, 3), (cout,)
    for i, fin, fout in VGG16_LINEARS:
        shapes[f"classifier.{i}.weight"], shapes[f"classifier.{i}.bias"] = (fout, fin), (fout,)
    return shapes


def test_torchvision_vgg16_state_dict_loads_strictly_with_the_grey_stem_and_new_classes():
    shapes = torchvision_vgg16_shapes()
    assert sum(torch.Size(s).numel() for s in shapes.values()) == 138_357_544  # torchvision's vgg16
    torch.manual_seed(0)
    state = {k: torch.randn(s) if k.startswith("features.") else torch.full(s, 0.5) for k, s in shapes.items()}
    net = patch_vgg("vgg16", num_classes=5, in_channels=1)
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert list(own) == list(shapes)  # torchvision's keys, in torchvision's order
    changed = {"features.0.weight": (64, 1, 3, 3), "classifier.6.weight": (5, 4096), "classifier.6.bias": (5,)}
    assert own == {**shapes, **changed}  # only the grey stem and the patch classes differ
    assert load_vgg_weights(net, state) == len(shapes) - 2  # everything but the 1000-class layer
    torch.testing.assert_close(net.features[0].weight, state["features.0.weight"].sum(1, keepdim=True))
    assert torch.equal(net.features[28].weight, state["features.28.weight"])
    assert torch.equal(net.classifier[3].weight, state["classifier.3.weight"])
    assert not torch.equal(net.classifier[6].bias, torch.full((5,), 0.5))  # the new head is not ImageNet's
    with pytest.raises(ValueError, match="not a state_dict of this architecture"):
        load_vgg_weights(net, {k: v for k, v in state.items() if k != "features.14.bias"})


def test_vgg_tiny_forward_shapes_and_imagenet_like_file(tmp_path):
    net = patch_network("vgg-tiny").eval()
    with torch.no_grad():
        assert net.features(torch.rand(2, 1, 224, 224)).shape == (2, 64, 7, 7)  # stride 32, as VGG16
        assert net(torch.rand(2, 1, 224, 224)).shape == (2, 5)
        assert net(torch.rand(3, 1, 32, 32)).shape == (3, 5)  # a demo-size patch: the 7 x 7 pool adapts
    rgb = patch_vgg("vgg-tiny", num_classes=1000, in_channels=3)
    path = tmp_path / "vgg_tiny_imagenet.pth"
    torch.save(rgb.state_dict(), path)
    grey = patch_network("vgg-tiny", pretrained_weights=path, input_norm=IMAGENET_GREY)
    assert type(grey.features[0]).__name__ == "NormalizedConv2d" and grey.arch == "vgg-tiny"
    torch.testing.assert_close(grey.features[0].weight, rgb.features[0].weight.sum(1, keepdim=True))


def test_the_patch_recipe_unfreezes_vggs_last_block_and_classifier_in_stage_two():
    assert arch_layers("vgg16", ["layer4", "fc"]) == ["features.24", "features.26", "features.28", "classifier"]
    assert arch_layers("resnet50", ["layer4", "fc"]) == ["layer4", "fc"] and arch_layers("vgg16", "all") == "all"
    net = apply_stage(patch_vgg("vgg-tiny"), arch_layers("vgg-tiny", ["layer4", "fc"]))
    trainable = {n.rsplit(".", 1)[0] for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"features.24", "features.26", "features.28", "classifier.0", "classifier.3", "classifier.6"}


@pytest.mark.parametrize("arch", ["vgg-tiny", "resnet10-tiny"])
@pytest.mark.parametrize("top,top_blocks", [("vgg", [1]), ("vgg", [1, 1]), ("resnet_bottleneck", [1, 1])])
def test_every_top_on_every_backbone_copies_the_patch_convolutions(tmp_path, arch, top, top_blocks):
    patch = patch_network(arch)
    ckpt = tmp_path / "patch.pt"
    torch.save({"model": patch.state_dict()}, ckpt)
    net = WholeImageClassifier(arch, top=top, top_blocks=top_blocks, patch_checkpoint=ckpt)
    head = "classifier." if arch.startswith("vgg") else "fc."
    assert net.load_patch_weights(ckpt) == len([k for k in patch.state_dict() if not k.startswith(head)])
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, patch.state_dict()[key])
    assert len(net.top) == len(top_blocks) and net.top_kind == top
    if top == "vgg":
        assert all(isinstance(block, VGGBlock) for block in net.top)
    with torch.no_grad():
        assert net.eval()(torch.rand(2, 1, 128, 100)).shape == (2, 2)


def test_shen_vgg16_tops_at_paper_width():
    vgg = WholeImageClassifier("vgg16", top="vgg", top_blocks=[1])  # "512x1"
    block = vgg.top[0]
    assert (block.conv1.in_channels, block.conv1.out_channels, block.conv1.kernel_size) == (512, 512, (3, 3))
    assert isinstance(block.bn1, torch.nn.BatchNorm2d) and block.pool.stride == 2 and vgg.fc.in_features == 512
    assert not any(k.startswith("backbone.classifier") for k in vgg.state_dict())  # the patch head is dropped
    hybrid = WholeImageClassifier("vgg16", top_blocks=[1, 1])  # "[512-512-1024]" stages on VGG16
    first = hybrid.top[0][0]
    assert (first.conv1.in_channels, first.conv2.out_channels, first.conv3.out_channels) == (512, 512, 1024)
    assert first.conv2.stride == (2, 2) and hybrid.fc.in_features == 1024


def test_a_wrong_top_or_arch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown top 'vgg_512x1'; choose from \['resnet_bottleneck', 'vgg'\]"):
        WholeImageClassifier("vgg-tiny", top="vgg_512x1")
    with pytest.raises(ValueError, match="unknown arch 'vgg19'.*vgg-tiny"):
        WholeImageClassifier("vgg19", top="vgg")
    with pytest.raises(ValueError, match="unknown arch 'vgg19'"):
        patch_network("vgg19")
    with pytest.raises(ValueError, match="one width per VGG block"):
        WholeImageClassifier("vgg-tiny", top="vgg", top_blocks=[1, 1], top_channels=[64])
