"""VGG16 patch classifiers in torchvision's layout, built from torch layers, and :func:`patch_network`,
which builds any patch classifier of this package by name (a ResNet or a VGG).

torchvision's ``vgg16`` (configuration "D" of Simonyan and Zisserman) is 13 3x3 convolutions with bias,
each followed by a ReLU, in five blocks of 64, 64 | 128, 128 | 256 x 3 | 512 x 3 | 512 x 3 channels, each
block closed by a 2x2 max-pool, all in one ``features`` Sequential (convolutions at indices 0, 2, 5, 7,
10, 12, 14, 17, 19, 21, 24, 26, 28; the last max-pool at 30: stride 32); then ``avgpool`` (adaptive,
7 x 7) and ``classifier``: Linear 25088 -> 4096, ReLU, Dropout, Linear 4096 -> 4096, ReLU, Dropout,
Linear 4096 -> classes (``classifier.0``, ``.3``, ``.6``; 138,357,544 parameters with 1000 classes).
Built the same way here, torchvision's ImageNet file loads key for key.

Shen et al.'s own VGG16 patch classifier was Keras' ``VGG16`` without its top, global average pooling
and one softmax layer. The patch network here keeps torchvision's head instead, so that the ImageNet
file loads strictly (its two 4096-wide layers start from ImageNet, the last one is new). The whole-image
classifier takes ``features`` only, so the head does not reach it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from mammo_monai.networks.onednn_guards import guard_convolutions
from mammo_monai.networks.pretrained import normalize_input
from mammo_monai.networks.resnet import ARCHITECTURES, load_torchvision_weights, patch_resnet

#: name -> (widths of the five blocks, width of the two hidden classifier layers).
#: "vgg-tiny" has VGG16's structure at 1/8 of its widths: the CPU tests.
VGG_ARCHITECTURES: dict[str, tuple[list[int], int]] = {
    "vgg16": ([64, 128, 256, 512, 512], 4096),
    "vgg-tiny": ([8, 16, 32, 64, 64], 32),
}
#: convolutions per block (VGG16)
VGG16_CONVS = (2, 2, 3, 3, 3)
#: every patch classifier name :func:`patch_network` builds
PATCH_ARCHITECTURES = sorted(ARCHITECTURES) + sorted(VGG_ARCHITECTURES)
#: the patch recipe's (ResNet) layer names -> the VGG block (counted from 0) they stand for
RESNET_LAYER_TO_VGG_BLOCK = {"conv1": 0, "bn1": 0, "layer1": 1, "layer2": 2, "layer3": 3, "layer4": 4}


def vgg_conv_indices() -> list[list[int]]:
    """The ``features`` indices of each block's convolutions (conv, ReLU pairs, then a max-pool):
    [[0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28]]."""
    blocks, index = [], 0
    for n in VGG16_CONVS:
        blocks.append([index + 2 * i for i in range(n)])
        index += 2 * n + 1
    return blocks


def vgg_features(
    arch: str = "vgg16",
    in_channels: int = 1,
    widths: Sequence[int] | None = None,
    input_norm: Sequence[float] | None = None,
) -> nn.Sequential:
    """``arch``'s convolutional layers alone: torchvision's ``features`` (through the last max-pool).

    Args:
        arch: a key of :data:`VGG_ARCHITECTURES`.
        in_channels: 1 for grey mammograms.
        widths: override the five block widths.
        input_norm: (mean, std) applied inside the first convolution; None: none.

    Convolutions are initialised as torchvision does (Kaiming normal, fan-out; zero bias) and are
    :class:`~mammo_monai.networks.onednn_guards.GuardedConv2d`.
    """
    if arch not in VGG_ARCHITECTURES:
        raise ValueError(f"unknown VGG arch {arch!r}; choose from {sorted(VGG_ARCHITECTURES)}")
    widths = list(widths or VGG_ARCHITECTURES[arch][0])
    if len(widths) != len(VGG16_CONVS):
        raise ValueError(f"{arch}: {len(VGG16_CONVS)} block widths expected, got {widths}")
    layers: list[nn.Module] = []
    channels = in_channels
    for width, n in zip(widths, VGG16_CONVS):
        for _ in range(n):
            conv = nn.Conv2d(channels, width, kernel_size=3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    features = nn.Sequential(*layers)
    guard_convolutions(features)
    normalize_input(features, input_norm, stem="0")
    return features


class VGG(nn.Module):
    """``features`` + adaptive 7 x 7 average pooling + torchvision's three-layer classifier.

    Args:
        features: the convolutional layers (:func:`vgg_features`).
        out_channels: channels ``features`` returns (512 for VGG16).
        hidden: width of the two hidden classifier layers (4096 for VGG16).
        num_classes: outputs of ``classifier.6``.
        dropout: dropout after each hidden layer (torchvision: 0.5).
    """

    def __init__(
        self, features: nn.Sequential, out_channels: int, hidden: int, num_classes: int, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(out_channels * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for layer in self.classifier:
            if isinstance(layer, nn.Linear):  # torchvision's initialisation
                nn.init.normal_(layer.weight, 0, 0.01)
                nn.init.zeros_(layer.bias)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def patch_vgg(
    arch: str = "vgg16",
    num_classes: int = 5,
    in_channels: int = 1,
    pretrained_weights: str | os.PathLike | None = None,
    widths: Sequence[int] | None = None,
    input_norm: Sequence[float] | None = None,
) -> VGG:
    """A VGG patch classifier in torchvision's ``vgg16`` layout.

    Args:
        arch: a key of :data:`VGG_ARCHITECTURES`.
        num_classes: outputs of ``classifier.6`` (5 patch classes by default).
        in_channels: 1 for grey mammograms (ImageNet's first convolution is folded by summing over RGB).
        pretrained_weights: a torchvision ``vgg16`` ``state_dict`` file; ``classifier.6`` is re-initialised
            when its shape differs, every other key must match (strict).
        widths: override the five block widths.
        input_norm: (mean, std) applied inside ``features.0`` (ImageNet weights:
            :data:`~mammo_monai.networks.pretrained.IMAGENET_GREY`); None: none.
    """
    features = vgg_features(arch, in_channels, widths)
    out_channels = list(widths or VGG_ARCHITECTURES[arch][0])[-1]
    net = VGG(features, out_channels, VGG_ARCHITECTURES[arch][1], num_classes)
    guard_convolutions(net)
    net.arch = arch  # recorded for checkpoints and the whole-image builder
    normalize_input(net, input_norm, stem="features.0")
    if pretrained_weights:
        load_vgg_weights(net, pretrained_weights)
    return net


def load_vgg_weights(net: nn.Module, path: str | os.PathLike | dict[str, torch.Tensor]) -> int:
    """Load torchvision's ``vgg16`` ``state_dict`` (file or dict) into ``net``: the stem folded to grey,
    ``classifier.6`` kept new when its shape differs, anything else strict. Returns the tensors loaded."""
    return load_torchvision_weights(net, path, stem="features.0", head=("classifier.6",))


def patch_network(
    arch: str = "resnet50",
    num_classes: int = 5,
    in_channels: int = 1,
    pretrained_weights: str | os.PathLike | None = None,
    widths: Sequence[int] | None = None,
    input_norm: Sequence[float] | None = None,
) -> nn.Module:
    """A patch classifier by name: :func:`~mammo_monai.networks.resnet.patch_resnet` for a ResNet
    (:data:`~mammo_monai.networks.resnet.ARCHITECTURES`), :func:`patch_vgg` for a VGG
    (:data:`VGG_ARCHITECTURES`); the same arguments. The patch bundle's ``network_def``."""
    if arch in VGG_ARCHITECTURES:
        builder = patch_vgg
    elif arch in ARCHITECTURES:
        builder = patch_resnet
    else:
        raise ValueError(f"unknown arch {arch!r}; choose from {PATCH_ARCHITECTURES}")
    return builder(
        arch,
        num_classes=num_classes,
        in_channels=in_channels,
        pretrained_weights=pretrained_weights,
        widths=widths,
        input_norm=input_norm,
    )


def arch_layers(arch: str, names: str | Sequence[str]) -> str | Sequence[str]:
    """The patch recipe's layer names as prefixes of ``arch``'s modules (what a stage trains).

    The recipe names ResNet layers (``fc``; ``layer4``, ``fc``; ``all``). A ResNet gets them unchanged.
    For a VGG, ``fc`` is ``classifier`` and ``layerN`` the convolutions of block N + 1 (``conv1`` /
    ``bn1``: block 1), so stage 2's ``layer4`` unfreezes block 5 (``features.24``, ``.26``, ``.28``), the
    layers Shen et al. unfroze in their second VGG16 stage. ``all`` and other names pass through.
    """
    if arch not in VGG_ARCHITECTURES or names in ("all", ["all"]):
        return names
    blocks = vgg_conv_indices()
    out: list[str] = []
    for name in [names] if isinstance(names, str) else names:
        if name == "fc":
            out.append("classifier")
        elif name in RESNET_LAYER_TO_VGG_BLOCK:
            out += [f"features.{i}" for i in blocks[RESNET_LAYER_TO_VGG_BLOCK[name]]]
        else:
            out.append(name)
    return list(dict.fromkeys(out))  # conv1 and bn1 name the same block
