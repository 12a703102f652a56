"""Shen et al.'s whole-image classifier: the patch network's convolutional layers, two new
bottleneck stages, global average pooling, dropout and a 2-class head."""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from mammo_monai.networks.onednn_guards import guard_convolutions
from mammo_monai.networks.resnet import ARCHITECTURES, patch_resnet

logger = logging.getLogger(__name__)

BACKBONE_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")


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


class WholeImageClassifier(nn.Module):
    """Patch backbone (through its last residual stage) + ``len(top_blocks)`` bottleneck stages +
    global average pooling + dropout + linear head.

    Module names: ``backbone.*`` holds the patch network's layers under their own names, so moving
    weights is an explicit key copy (see :meth:`load_patch_weights`); ``top.*`` are new.

    Args:
        arch: the patch network's architecture (see :data:`~mammo_monai.networks.resnet.ARCHITECTURES`).
        top_channels: (mid, out) widths of the new stages; the paper's [512-512-1024] is (512, 1024).
            None: (w, 2w) with w the backbone's last stage width (512 for ResNet50 and ResNet18).
        top_blocks: bottlenecks per new stage; the first of each has stride 2 (paper: two stages).
        patch_checkpoint: a patch-classifier checkpoint to copy the backbone from.
        input_norm: (mean, std) the patch network normalised its input with (ImageNet weights); None: none.
    """

    def __init__(
        self,
        arch: str = "resnet50",
        num_classes: int = 2,
        in_channels: int = 1,
        top_channels: tuple[int, int] | None = None,
        top_blocks: tuple[int, ...] = (1, 1),
        dropout: float = 0.5,
        patch_checkpoint: str | os.PathLike | None = None,
        widths: list[int] | None = None,
        input_norm: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        patch = patch_resnet(arch, num_classes=5, in_channels=in_channels, widths=widths, input_norm=input_norm)
        self.arch = arch
        self.backbone = nn.Sequential()
        for name in ("conv1", "bn1", "act", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.backbone.add_module(name, getattr(patch, name))
        feat = patch.fc.in_features
        width = (widths or ARCHITECTURES[arch][2])[-1]  # 512 for ResNet50/18: the paper's 512-512-1024
        mid, out = top_channels or (width, 2 * width)
        stages, channels = [], feat
        for n in top_blocks:
            blocks = [Bottleneck(channels, mid, out, stride=2)] + [Bottleneck(out, mid, out) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out
        self.top = nn.Sequential(*stages)
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
