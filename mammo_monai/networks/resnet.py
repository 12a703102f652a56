"""Patch classifier backbones with torchvision's ResNet layout, built with MONAI's ResNet.

MONAI's ``ResNet`` with a stride-2 7x7 stem, max-pool, projection ("B") shortcuts without bias
has exactly torchvision's module tree and parameter names (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ..., ``fc``; 25,557,032 parameters for ResNet50), so an ImageNet
torchvision ``state_dict`` file loads unchanged. ``monai.networks.nets.resnet50()`` itself defaults
to a stride-1 stem (about 4x the FLOPs) and must not be used here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import torch
from monai.networks.nets import ResNet

from mammo_monai.networks.onednn_guards import guard_convolutions
from mammo_monai.networks.pretrained import normalize_input

logger = logging.getLogger(__name__)

#: name -> (block, layers, widths). "resnet18-narrow" halves the widths: the CPU demo and tests.
ARCHITECTURES: dict[str, tuple[str, list[int], list[int]]] = {
    "resnet50": ("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512]),
    "resnet34": ("basic", [3, 4, 6, 3], [64, 128, 256, 512]),
    "resnet18": ("basic", [2, 2, 2, 2], [64, 128, 256, 512]),
    "resnet18-narrow": ("basic", [2, 2, 2, 2], [32, 64, 128, 256]),
    "resnet10-tiny": ("basic", [1, 1, 1, 1], [8, 16, 32, 64]),
}


def patch_resnet(
    arch: str = "resnet50",
    num_classes: int = 5,
    in_channels: int = 1,
    pretrained_weights: str | os.PathLike | None = None,
    widths: Sequence[int] | None = None,
    input_norm: Sequence[float] | None = None,
) -> ResNet:
    """A ResNet patch classifier in torchvision's layout.

    Args:
        arch: a key of :data:`ARCHITECTURES`.
        num_classes: outputs of the final ``fc`` (5 patch classes by default).
        in_channels: 1 for grey mammograms (ImageNet stem weights are folded by summing over RGB),
            3 to feed repeated grey channels.
        pretrained_weights: path of a torchvision ``state_dict`` (``.pth``) to load; ``fc`` is
            re-initialised when its shape differs. Every other key must match (strict).
        widths: override the four stage widths.
        input_norm: (mean, std) applied to the input inside the network's stem (ImageNet weights:
            :data:`~mammo_monai.networks.pretrained.IMAGENET_GREY`); None: none.

    Its convolutions are :class:`~mammo_monai.networks.onednn_guards.GuardedConv2d` (two oneDNN CPU
    bugs avoided; same parameters and keys).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; choose from {sorted(ARCHITECTURES)}")
    block, layers, default_widths = ARCHITECTURES[arch]
    net = ResNet(
        block=block,
        layers=layers,
        block_inplanes=list(widths or default_widths),
        spatial_dims=2,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=2,
        no_max_pool=False,
        shortcut_type="B",
        bias_downsample=False,
        num_classes=num_classes,
    )
    guard_convolutions(net)
    net.arch = arch  # recorded for checkpoints and the whole-image builder
    normalize_input(net, input_norm)
    if pretrained_weights:
        load_torchvision_weights(net, pretrained_weights)
    return net


def state_dict_mismatch(
    own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], optional: tuple[str, ...] = ()
) -> str:
    """Empty when ``state`` fits ``own`` key for key and shape (keys starting with ``optional`` may
    be absent); else a one-line account of what is missing, unexpected or of another shape."""
    missing = [k for k in own if k not in state and not k.startswith(optional)]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in state if k in own and state[k].shape != own[k].shape]
    if not (missing or unexpected or shapes):
        return ""
    return (
        f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
        f"{len(shapes)} of another shape (e.g. {shapes[:3]})"
    )


def load_torchvision_weights(
    net: torch.nn.Module,
    path: str | os.PathLike | Mapping[str, torch.Tensor],
    stem: str = "conv1",
    head: Sequence[str] = ("fc",),
) -> int:
    """Load a torchvision ``state_dict`` (a ``.pth`` file, or the dict itself) into ``net``; returns the
    number of tensors loaded.

    A 3-channel stem (``stem``.weight) is folded into a 1-channel one by summing over its input channels
    (the same response to a grey image repeated over RGB). Tensors under ``head`` (ResNet's ``fc``, VGG's
    ``classifier.6``) are skipped where the network holds them in another shape (ImageNet has 1000
    classes): the network keeps its new layer. Any other missing, unexpected or mis-shaped key raises.
    """
    if isinstance(path, Mapping):
        where, state = "state_dict", dict(path)
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: pretrained weights file not found")
    else:
        where, state = path, torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = net.state_dict()
    w = state.get(f"{stem}.weight")
    if w is not None and w.shape[1] == 3 and own[f"{stem}.weight"].shape[1] == 1:
        state[f"{stem}.weight"] = w.sum(1, keepdim=True)
    heads = tuple(f"{h}." for h in head)
    for key in [k for k in state if k.startswith(heads)]:
        if key in own and state[key].shape != own[key].shape:
            logger.info(
                "pretrained %s has shape %s, the network %s: kept the new layer",
                key,
                tuple(state[key].shape),
                tuple(own[key].shape),
            )
            state.pop(key)
    problem = state_dict_mismatch(own, state, optional=heads)
    if problem:
        raise ValueError(f"{where}: not a state_dict of this architecture: {problem}")
    net.load_state_dict(state, strict=False)
    logger.info("loaded %d tensors from %s", len(state), where)
    return len(state)
