"""SE-ResNeXt for the RSNA screening recipe: MONAI's ``SENet`` with ``SEResNeXtBottleneck`` blocks, one
grey input channel, any number of outputs (one logit for screening), and ImageNet weights through the
project's weights mechanism (:func:`~mammo_monai.networks.pretrained.resolve_weights`).

MONAI's ``SEResNext50(pretrained=True)`` downloads the Cadene weights into a 3-channel network and has
no local-file path; here a local file (Cadene's layout or MONAI's) loads strictly apart from the
classifier, with the RGB stem summed into one grey channel.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from monai.networks.nets import SENet
from monai.networks.nets.senet import SEResNeXtBottleneck

from mammo_monai.networks.pretrained import normalize_input
from mammo_monai.networks.resnet import state_dict_mismatch

#: MONAI SENet settings per architecture; "seresnext50" is SE-ResNeXt50 (32x4d) as MONAI's SEResNext50
#: builds it; "seresnext-tiny" keeps its block and widths with one block per stage, for CPU tests and demos.
SERESNEXT = {
    "seresnext50": {"layers": (3, 4, 6, 3), "groups": 32, "reduction": 16},
    "seresnext-tiny": {"layers": (1, 1, 1, 1), "groups": 32, "reduction": 16},
}
STEM = "layer0.conv1"
CLASSIFIER = "last_linear."
#: Cadene's pretrainedmodels names -> MONAI's SENet names (block convolutions, their BatchNorms,
#: squeeze-excitation layers, downsampling projections)
_CADENE_KEYS = (
    (re.compile(r"^(layer\d\.\d+\.)conv(\d)\.(\w+)$"), r"\1conv\2.conv.\3"),
    (re.compile(r"^(layer\d\.\d+\.)bn(\d)\.(\w+)$"), r"\1conv\2.adn.N.\3"),
    (re.compile(r"^(layer\d\.\d+\.)se_module\.fc1\.(\w+)$"), r"\1se_layer.fc.0.\2"),
    (re.compile(r"^(layer\d\.\d+\.)se_module\.fc2\.(\w+)$"), r"\1se_layer.fc.2.\2"),
    (re.compile(r"^(layer\d\.\d+\.)downsample\.0\.(\w+)$"), r"\1project.conv.\2"),
    (re.compile(r"^(layer\d\.\d+\.)downsample\.1\.(\w+)$"), r"\1project.adn.N.\2"),
)


def monai_key(key: str) -> str:
    """The MONAI ``SENet`` name of a Cadene ``pretrainedmodels`` state-dict key (MONAI names pass as they are)."""
    for pattern, replacement in _CADENE_KEYS:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return key


def load_seresnext_weights(net: SENet, path: str | os.PathLike) -> int:
    """Load ImageNet SE-ResNeXt weights from ``path`` into ``net`` (grey stem, own classifier).

    The 3-channel stem is summed over its input channels (a grey image repeated over RGB gives the
    same response), 1x1 squeeze-excitation convolutions become the linear layers MONAI uses, and the
    ImageNet classifier is left out. Every other tensor must match by name and shape.

    Returns:
        the number of tensors loaded.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, dict) else state
    own = net.state_dict()
    loaded = {}
    for key, value in state.items():
        name = monai_key(key.removeprefix("module."))
        if name.startswith(CLASSIFIER):
            continue
        if name == f"{STEM}.weight" and value.shape[1] != own[name].shape[1]:
            value = value.sum(dim=1, keepdim=True)
        if name in own and value.dim() == 4 and own[name].dim() == 2:  # 1x1 conv -> linear
            value = value.flatten(1)
        loaded[name] = value
    expected = {k: v for k, v in own.items() if not k.startswith(CLASSIFIER)}
    problem = state_dict_mismatch(expected, loaded)
    if problem:
        raise ValueError(f"{path}: not SE-ResNeXt weights for this network: {problem}")
    net.load_state_dict({**own, **loaded}, strict=True)
    return len(loaded)


def screening_seresnext(
    arch: str = "seresnext50",
    out_channels: int = 1,
    pretrained_weights: str | os.PathLike | None = None,
    input_norm: list[float] | None = None,
    dropout: float | None = None,
) -> SENet:
    """SE-ResNeXt on one grey channel with ``out_channels`` logits.

    Args:
        arch: a key of :data:`SERESNEXT`.
        out_channels: outputs of the classifier (1: a screening logit, sigmoid gives P(cancer)).
        pretrained_weights: a weights file already resolved (see ``resolve_weights``), or None.
        input_norm: (mean, std) put inside the stem, as for the other networks started from ImageNet.
        dropout: dropout before the classifier (None: none).
    """
    if arch not in SERESNEXT:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(SERESNEXT)}")
    net = SENet(
        spatial_dims=2,
        in_channels=1,
        block=SEResNeXtBottleneck,
        inplanes=64,
        downsample_kernel_size=1,
        input_3x3=False,
        dropout_prob=dropout,
        num_classes=out_channels,
        **SERESNEXT[arch],
    )
    if pretrained_weights:
        load_seresnext_weights(net, Path(pretrained_weights))
    return normalize_input(net, input_norm, stem=STEM)
