"""Shen et al.'s whole-image classifier: the patch network's convolutional layers, new top blocks
(ResNet bottleneck stages or VGG blocks), global average pooling, dropout and a 2-class head."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

from mammo_monai.networks.onednn_guards import guard_convolutions
from mammo_monai.networks.resnet import ARCHITECTURES, patch_resnet
from mammo_monai.networks.vgg import PATCH_ARCHITECTURES, VGG_ARCHITECTURES, vgg_features

logger = logging.getLogger(__name__)

BACKBONE_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
#: the kinds of top: Shen et al.'s ResNet bottleneck stages ("[512-512-1024]") or VGG blocks ("512x1")
TOPS = ("resnet_bottleneck", "vgg")


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 bottleneck with expansion 2 (512 -> 512 -> 1024 in the paper)
    and a 1x1 projection shortcut with batch norm when the shape changes."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        guard_convolutions(self)  # see networks/onednn_guards.py

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class VGGBlock(nn.Sequential):
    """Shen et al.'s VGG block of the whole-image top: ``convs`` x (3x3 convolution, BatchNorm, ReLU),
    then a 2x2 max-pool with stride 2 ("512x1": one convolution of 512 channels).

    The convolutions have no bias (BatchNorm's shift replaces it). The pool rounds up (``ceil_mode``):
    an odd map keeps its last row or column, and a small map (a CPU test image) never pools to nothing;
    two blocks at 1152 x 896 pool even maps (36 x 28 -> 18 x 14 -> 9 x 7), the same as rounding down.
    """

    def __init__(self, in_channels: int, out_channels: int, convs: int = 1) -> None:
        super().__init__()
        for i in range(1, convs + 1):
            self.add_module(f"conv{i}", nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False))
            self.add_module(f"bn{i}", nn.BatchNorm2d(out_channels))
            self.add_module(f"relu{i}", nn.ReLU(inplace=True))
            in_channels = out_channels
        self.add_module("pool", nn.MaxPool2d(2, 2, ceil_mode=True))
        guard_convolutions(self)  # see networks/onednn_guards.py


def patch_backbone(
    arch: str,
    in_channels: int = 1,
    widths: Sequence[int] | None = None,
    input_norm: Sequence[float] | None = None,
) -> tuple[nn.Sequential, int, int]:
    """The patch network's convolutional layers under the patch network's own names, the channels they
    return and the width the paper's top is sized from (512 for ResNet50, ResNet18 and VGG16).

    ResNet: ``conv1`` ... ``layer4`` (stride 32). VGG: ``features`` through its last max-pool (stride 32),
    built without the classifier it would drop.
    """
    if arch in VGG_ARCHITECTURES:
        backbone = nn.Sequential()
        backbone.add_module("features", vgg_features(arch, in_channels, widths, input_norm))
        width = list(widths or VGG_ARCHITECTURES[arch][0])[-1]
        return backbone, width, width
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; choose from {PATCH_ARCHITECTURES}")
    patch = patch_resnet(arch, num_classes=5, in_channels=in_channels, widths=widths, input_norm=input_norm)
    backbone = nn.Sequential()
    for name in ("conv1", "bn1", "act", "maxpool", "layer1", "layer2", "layer3", "layer4"):
        backbone.add_module(name, getattr(patch, name))
    return backbone, patch.fc.in_features, list(widths or ARCHITECTURES[arch][2])[-1]


def build_top(
    top: str,
    in_channels: int,
    width: int,
    top_blocks: Sequence[int],
    top_channels: Sequence[int] | None = None,
) -> tuple[nn.Sequential, int]:
    """The new top blocks and the channels they return.

    Args:
        top: ``resnet_bottleneck``: one stage of ``n`` bottlenecks per entry of ``top_blocks``, the first
            with stride 2 and a projection shortcut, (mid, out) = ``top_channels`` or (w, 2w);
            ``vgg``: one :class:`VGGBlock` of ``n`` convolutions per entry, widths ``top_channels`` (one
            per block) or w each.
        in_channels: channels of the backbone's output.
        width: w, the backbone's last stage width (512 at the paper's size).
        top_blocks: units per block; its length is the number of blocks.
        top_channels: see ``top``.
    """
    if top not in TOPS:
        raise ValueError(f"unknown top {top!r}; choose from {list(TOPS)}")
    if any(int(n) < 1 for n in top_blocks):
        raise ValueError(f"top_blocks {list(top_blocks)}: every block needs at least one unit")
    stages: list[nn.Module] = []
    channels = in_channels
    if top == "resnet_bottleneck":
        mid, out = top_channels or (width, 2 * width)
        for n in top_blocks:
            blocks = [Bottleneck(channels, mid, out, stride=2)] + [Bottleneck(out, mid, out) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out
    else:
        block_widths = list(top_channels or [width] * len(top_blocks))
        if len(block_widths) != len(top_blocks):
            raise ValueError(f"top_channels {block_widths}: one width per VGG block of top_blocks {list(top_blocks)}")
        for w, n in zip(block_widths, top_blocks):
            stages.append(VGGBlock(channels, w, n))
            channels = w
    return nn.Sequential(*stages), channels


class WholeImageClassifier(nn.Module):
    """Patch backbone (its convolutional layers) + the new ``top`` + global average pooling + dropout +
    linear head.

    Module names: ``backbone.*`` holds the patch network's layers under their own names, so moving
    weights is an explicit key copy (see :meth:`load_patch_weights`); ``top.*`` are new.

    Args:
        arch: the patch network's architecture (a ResNet of :data:`~mammo_monai.networks.resnet.ARCHITECTURES`
            or a VGG of :data:`~mammo_monai.networks.vgg.VGG_ARCHITECTURES`).
        num_classes: outputs of ``fc``.
        in_channels: input channels (1: grey).
        top_channels: ``resnet_bottleneck``: (mid, out) widths of the new stages, the paper's [512-512-1024]
            is (512, 1024); ``vgg``: one width per block. None: (w, 2w), or w per VGG block, with w the
            backbone's last stage width (512 for ResNet50, ResNet18 and VGG16).
        top_blocks: units per new block (bottlenecks for ``resnet_bottleneck``, the first of each stage with
            stride 2; 3x3 convolutions for ``vgg``); its length is the number of blocks.
        dropout: dropout before ``fc``.
        patch_checkpoint: a patch-classifier checkpoint to copy the backbone from.
        widths: override the backbone's stage widths.
        input_norm: (mean, std) the patch network normalised its input with (ImageNet weights); None: none.
        top: the kind of the new blocks, one of :data:`TOPS` (see :func:`build_top`).
    """

    def __init__(
        self,
        arch: str = "resnet50",
        num_classes: int = 2,
        in_channels: int = 1,
        top_channels: Sequence[int] | None = None,
        top_blocks: Sequence[int] = (1, 1),
        dropout: float = 0.5,
        patch_checkpoint: str | os.PathLike | None = None,
        widths: list[int] | None = None,
        input_norm: tuple[float, float] | None = None,
        top: str = "resnet_bottleneck",
    ) -> None:
        super().__init__()
        if top not in TOPS:  # before building a backbone
            raise ValueError(f"unknown top {top!r}; choose from {list(TOPS)}")
        self.arch, self.top_kind = arch, top
        self.backbone, feat, width = patch_backbone(arch, in_channels, widths, input_norm)
        self.top, channels = build_top(top, feat, width, top_blocks, top_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        if patch_checkpoint:
            self.load_patch_weights(patch_checkpoint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(self.top(self.backbone(x))), 1)))

    def load_patch_weights(self, checkpoint: str | os.PathLike | dict) -> int:
        """Copy the patch network's convolutional layers into ``backbone``; returns the tensor count.

        Accepts a state_dict or a MONAI checkpoint (``{"model": state_dict, ...}``), with or without
        a ``module.`` prefix. Raises when any backbone tensor is not found or has another shape: a
        silent partial load (``strict=False`` with mismatched prefixes) is the failure it prevents.
        """
        if not isinstance(checkpoint, dict) and not os.path.isfile(checkpoint):
            raise FileNotFoundError(
                f"{checkpoint}: patch classifier checkpoint not found (train the patch classifier first)"
            )
        state = (
            torch.load(checkpoint, map_location="cpu", weights_only=True)
            if not isinstance(checkpoint, dict)
            else checkpoint
        )
        if "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        own = self.backbone.state_dict()
        moved, problems = {}, []
        for key, tensor in own.items():
            src = state.get(key)
            if src is None:
                problems.append(f"missing {key}")
            elif src.shape != tensor.shape:
                problems.append(f"{key}: {tuple(src.shape)} vs {tuple(tensor.shape)}")
            else:
                moved[key] = src
        if problems:
            raise ValueError(
                f"{checkpoint if not isinstance(checkpoint, dict) else 'state_dict'}: patch backbone did not load "
                f"({len(moved)} of {len(own)} tensors; {len(problems)} problems, e.g. {problems[:3]})"
            )
        self.backbone.load_state_dict(moved, strict=True)
        logger.info("moved %d backbone tensors from the patch classifier", len(moved))
        return len(moved)
