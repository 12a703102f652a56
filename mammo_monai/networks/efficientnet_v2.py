"""EfficientNetV2-S in torchvision's exact ``state_dict`` layout, on one grey channel, with one logit.

MONAI's ``EfficientNetBN`` covers EfficientNet B0-B7 only, and torchvision (whose ImageNet
EfficientNetV2-S weights are the well-kept public ones) cannot be installed beside this project's CPU
PyTorch: the only wheel on the index is a CUDA build whose C operators fail to register, and timm
imports torchvision. So the network is written here from PyTorch layers and MONAI's stochastic depth
(``drop_connect``), with torchvision's module tree: ``features.0`` the stem (3x3 stride-2 convolution,
BatchNorm, SiLU), ``features.1-6`` the stages of FusedMBConv / MBConv blocks (``block.N`` their
convolution-BatchNorm(-SiLU) units, ``fc1`` / ``fc2`` the squeeze-excitation 1x1 convolutions),
``features.7`` the 1x1 head convolution to 1280 channels, ``classifier.1`` the linear layer.
torchvision's ImageNet file (``efficientnet_v2_s-dd5fe13b.pth``) loads strictly; the fixture
``tests/fixtures/efficientnet_v2_s_layout.json`` (made by ``scripts/torchvision_layout.py`` from
torchvision's own code) holds its key -> shape list and a reference forward pass the tests reproduce.

Recipe head (issue 12): the pooled features go through SELU, then ``classifier`` = Dropout(0.2) ->
Linear(1280, 1): one logit for ``BCEWithLogitsLoss``. SELU has no parameters, so the keys stay
torchvision's; see the bundle's model card for why SELU sits before the linear layer.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from monai.networks.nets.efficientnet import drop_connect
from torch import nn

from mammo_monai.networks.onednn_guards import guard_convolutions
from mammo_monai.networks.pretrained import normalize_input
from mammo_monai.networks.resnet import state_dict_mismatch

logger = logging.getLogger(__name__)

STEM = "features.0.0"
CLASSIFIER = "classifier."
BN_EPS = 1e-3  # torchvision's EfficientNetV2 (the TensorFlow original's), not PyTorch's default 1e-5


@dataclass(frozen=True)
class StageSetting:
    """One stage of Table 4 of the EfficientNetV2 paper, as torchvision's ``efficientnet_v2_s`` builds it.

    Attributes:
        fused: FusedMBConv (a full kxk expansion convolution) or MBConv (1x1 expansion, depthwise kxk,
            squeeze-excitation).
        expand: channel expansion ratio.
        kernel: kernel size of the spatial convolution.
        stride: stride of the stage's first block (the others have stride 1).
        in_channels, out_channels: channels into and out of the stage.
        layers: number of blocks.
    """

    fused: bool
    expand: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    layers: int


#: arch -> (stages, channels of the 1x1 head convolution). "efficientnetv2-s" is torchvision's
#: ``efficientnet_v2_s`` (21,458,488 parameters with its 1000-class classifier); "efficientnetv2-tiny"
#: keeps both block types, every stride and a residual block of each kind, narrow and shallow, for CPU
#: tests and demos (no pretrained weights exist for it).
EFFICIENTNET_V2: dict[str, tuple[tuple[StageSetting, ...], int]] = {
    "efficientnetv2-s": (
        (
            StageSetting(True, 1, 3, 1, 24, 24, 2),
            StageSetting(True, 4, 3, 2, 24, 48, 4),
            StageSetting(True, 4, 3, 2, 48, 64, 4),
            StageSetting(False, 4, 3, 2, 64, 128, 6),
            StageSetting(False, 6, 3, 1, 128, 160, 9),
            StageSetting(False, 6, 3, 2, 160, 256, 15),
        ),
        1280,
    ),
    "efficientnetv2-tiny": (
        (
            StageSetting(True, 1, 3, 1, 16, 16, 1),
            StageSetting(True, 4, 3, 2, 16, 24, 2),
            StageSetting(True, 4, 3, 2, 24, 32, 1),
            StageSetting(False, 4, 3, 2, 32, 48, 2),
            StageSetting(False, 6, 3, 1, 48, 64, 1),
            StageSetting(False, 6, 3, 2, 64, 96, 1),
        ),
        320,
    ),
}


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: to a multiple of ``divisor``, never below 90 % of ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def conv_bn_act(
    in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    """Convolution (no bias, "same" padding) -> BatchNorm (eps 1e-3) [-> SiLU]: torchvision's
    ``Conv2dNormActivation`` with its keys ``0.weight``, ``1.weight`` ..."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels, eps=BN_EPS),
    ]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gate: global average -> 1x1 conv ``fc1`` -> SiLU -> 1x1 conv ``fc2`` -> sigmoid -> scale.

    MONAI's ``ChannelSELayer`` computes the same with linear layers named ``fc.0`` / ``fc.2``; the
    1x1 convolutions here keep torchvision's names and weight shapes.
    """

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class MBConvBlock(nn.Module):
    """A FusedMBConv or MBConv block; a residual block (stride 1, same channels) drops its branch
    per sample with probability ``drop_prob`` while training (stochastic depth, MONAI's ``drop_connect``).

    FusedMBConv: kxk expansion convolution, then a 1x1 projection (only the kxk convolution when
    ``expand`` is 1). MBConv: 1x1 expansion, kxk depthwise convolution, squeeze-excitation (to a
    quarter of the block's input channels), 1x1 projection.
    """

    def __init__(self, setting: StageSetting, drop_prob: float) -> None:
        super().__init__()
        s = setting
        if s.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {s.stride}")
        self.use_residual = s.stride == 1 and s.in_channels == s.out_channels
        self.drop_prob = float(drop_prob)
        hidden = _make_divisible(s.in_channels * s.expand)
        layers: list[nn.Module] = []
        if s.fused:
            if hidden != s.in_channels:
                layers.append(conv_bn_act(s.in_channels, hidden, s.kernel, s.stride))
                layers.append(conv_bn_act(hidden, s.out_channels, act=False))
            else:
                layers.append(conv_bn_act(s.in_channels, s.out_channels, s.kernel, s.stride))
        else:
            if hidden != s.in_channels:
                layers.append(conv_bn_act(s.in_channels, hidden))
            layers.append(conv_bn_act(hidden, hidden, s.kernel, s.stride, groups=hidden))
            layers.append(SqueezeExcitation(hidden, max(1, s.in_channels // 4)))
            layers.append(conv_bn_act(hidden, s.out_channels, act=False))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = drop_connect(out, self.drop_prob, self.training) + x
        return out


class EfficientNetV2(nn.Module):
    """EfficientNetV2 (Tan and Le, ICML 2021) in torchvision's layout, with the recipe's head.

    ``features`` -> global average pool -> SELU (``head_activation``) -> ``classifier``
    (Dropout, Linear). With ``in_channels=3`` and ``out_channels=1000`` its ``state_dict`` has exactly
    torchvision's keys and shapes.

    Args:
        stages: the stage settings (see :data:`EFFICIENTNET_V2`).
        head_channels: channels of the last 1x1 convolution (1280 for V2-S).
        in_channels: 1 for grey images (an ImageNet stem is folded by summing over RGB).
        out_channels: logits (1: P(positive) is their sigmoid).
        dropout: dropout before the linear layer (0.2 in the recipe and in torchvision).
        stochastic_depth: block ``i`` of ``n`` drops its residual branch with probability
            ``stochastic_depth * i / n`` while training (0.2 in torchvision).
    """

    def __init__(
        self,
        stages: tuple[StageSetting, ...],
        head_channels: int,
        in_channels: int = 1,
        out_channels: int = 1,
        dropout: float = 0.2,
        stochastic_depth: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(in_channels, stages[0].in_channels, 3, 2)]
        total = sum(s.layers for s in stages)
        index = 0
        for setting in stages:
            blocks = []
            for i in range(setting.layers):
                s = setting if i == 0 else replace(setting, in_channels=setting.out_channels, stride=1)
                blocks.append(MBConvBlock(s, stochastic_depth * index / total))
                index += 1
            layers.append(nn.Sequential(*blocks))
        layers.append(conv_bn_act(stages[-1].out_channels, head_channels))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head_activation = nn.SELU()
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(head_channels, out_channels))
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's rule for the convolutions and BatchNorms. The linear layer keeps PyTorch's
        # default (bound 1 / sqrt(fan_in)): torchvision's uniform(+-1 / sqrt(out_features)) is sized for
        # 1000 classes and gives one output weights up to 1, i.e. initial logits of about +-10.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, head_channels): the globally averaged output of ``features``."""
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head_activation(self.pooled_features(x)))


def load_efficientnet_v2_weights(net: EfficientNetV2, path: str | os.PathLike) -> int:
    """Load a torchvision EfficientNetV2 ``state_dict`` file into ``net``; returns the tensors loaded.

    A 3-channel stem is summed over its input channels for a grey network (a grey image repeated over
    RGB gives the same response); ``classifier`` tensors of another shape (ImageNet's 1000 classes)
    are left out and the network keeps its own. Every other tensor must match by name and shape.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: a missing, unexpected or mis-shaped tensor (another architecture's file).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: pretrained weights file not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    own = net.state_dict()
    loaded = {}
    for key, value in state.items():
        name = key.removeprefix("module.")
        if name == f"{STEM}.weight" and name in own and value.shape[1] == 3 and own[name].shape[1] == 1:
            value = value.sum(dim=1, keepdim=True)
        if name.startswith(CLASSIFIER) and name in own and value.shape != own[name].shape:
            logger.info(
                "pretrained %s has shape %s, the network %s: kept the new layer", name, value.shape, own[name].shape
            )
            continue
        loaded[name] = value
    problem = state_dict_mismatch(own, loaded, optional=(CLASSIFIER,))
    if problem:
        raise ValueError(f"{path}: not EfficientNetV2 weights for this network: {problem}")
    net.load_state_dict({**own, **loaded}, strict=True)
    logger.info("loaded %d tensors from %s", len(loaded), path)
    return len(loaded)


def efficientnet_v2(
    arch: str = "efficientnetv2-s",
    out_channels: int = 1,
    in_channels: int = 1,
    pretrained_weights: str | os.PathLike | None = None,
    input_norm: list[float] | tuple[float, float] | None = None,
    dropout: float = 0.2,
    stochastic_depth: float = 0.2,
) -> EfficientNetV2:
    """EfficientNetV2 on ``in_channels`` with ``out_channels`` logits and the recipe's head.

    Args:
        arch: a key of :data:`EFFICIENTNET_V2`.
        out_channels: logits (1 for the recipe's ``BCEWithLogitsLoss``).
        in_channels: 1 for grey images.
        pretrained_weights: a torchvision ``state_dict`` file already resolved (``resolve_weights``), or None.
        input_norm: (mean, std) applied inside the stem (ImageNet weights: ``IMAGENET_GREY``); None: none.
        dropout: dropout before the linear layer.
        stochastic_depth: the stochastic depth scale (block ``i`` of ``n``: ``stochastic_depth * i / n``).

    Its convolutions are ``GuardedConv2d`` (two oneDNN CPU bugs avoided; same parameters and keys).
    """
    if arch not in EFFICIENTNET_V2:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(EFFICIENTNET_V2)}")
    stages, head = EFFICIENTNET_V2[arch]
    net = EfficientNetV2(stages, head, in_channels, out_channels, dropout, stochastic_depth)
    guard_convolutions(net)
    net.arch = arch
    if pretrained_weights:
        load_efficientnet_v2_weights(net, Path(pretrained_weights))
    return normalize_input(net, input_norm, stem=STEM)
