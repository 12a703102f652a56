"""The U-Net of the segment-then-classify recipe, and what carries its weights from stage to stage.

MONAI's ``BasicUNet`` (encoder ``conv_0``, ``down_1`` .. ``down_4``; decoder ``upcat_4`` .. ``upcat_1``;
``final_conv``). The recipe's stages build different networks around the same parts:

1. :class:`EncoderReconstructor`: the encoder alone, with a throwaway light head (a 1x1 convolution and
   a pixel shuffle back to the input size) that reconstructs the image from the bottleneck, so only
   the encoder learns;
2. the whole U-Net, one output channel, on the same reconstruction objective; it starts from stage 1's
   encoder;
3. the U-Net with ``out_channels`` classes (background, lesion) that starts from stage 2's encoder and
   decoder; only ``final_conv`` is new.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.networks.nets import BasicUNet
from torch import nn
from torch.nn import functional as F

from mammo_monai.networks.resnet import state_dict_mismatch

logger = logging.getLogger(__name__)

ENCODER = ("conv_0", "down_1", "down_2", "down_3", "down_4")
HEAD = "final_conv"
#: BasicUNet feature widths: the recipe's default, and a narrow one for CPU tests and demos
FEATURES = {"unet": (32, 32, 64, 128, 256, 32), "unet-tiny": (8, 8, 16, 32, 64, 8)}
SSL_STAGES = (1, 2)


def _unet(arch: str, out_channels: int) -> BasicUNet:
    if arch not in FEATURES:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(FEATURES)}")
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=out_channels, features=FEATURES[arch])


class EncoderReconstructor(nn.Module):
    """Stage 1: the U-Net encoder and a light reconstruction head (the decoder does not exist yet).

    The head maps the bottleneck (1/16 of the input size) back to the image with a 1x1 convolution
    to 16 x 16 values per position and a pixel shuffle, then interpolates to the exact input size
    (sizes that are not multiples of 16). Being weak on purpose, it leaves the work to the encoder.
    """

    SCALE = 16

    def __init__(self, arch: str = "unet") -> None:
        super().__init__()
        unet = _unet(arch, 1)
        for name in ENCODER:
            setattr(self, name, getattr(unet, name))
        self.head = nn.Sequential(nn.Conv2d(FEATURES[arch][4], self.SCALE**2, 1), nn.PixelShuffle(self.SCALE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for name in ENCODER:
            h = getattr(self, name)(h)
        return F.interpolate(self.head(h), size=x.shape[-2:], mode="bilinear", align_corners=False)


def _load_parts(net: nn.Module, path: str | os.PathLike, prefixes: Sequence[str], what: str) -> int:
    """Load the tensors of ``net`` under ``prefixes`` from checkpoint ``path``; every one must be there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found (did the previous stage run?)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    own = {k: v for k, v in net.state_dict().items() if k.split(".", 1)[0] in prefixes}
    theirs = {k: v for k, v in state.items() if k.split(".", 1)[0] in prefixes}
    problem = state_dict_mismatch(own, theirs)
    if problem:
        raise ValueError(f"{path}: {what} does not match {type(net).__name__}: {problem}")
    net.load_state_dict(theirs, strict=False)
    return len(theirs)


def lesion_unet(
    stage: int,
    arch: str = "unet",
    out_channels: int = 2,
    previous_checkpoint: str | os.PathLike | None = None,
) -> nn.Module:
    """The network of ``stage`` (see the module docstring), started from the previous stage's best.

    Args:
        stage: 1 (encoder pretraining), 2 (autoencoder pretraining) or 3 (segmentation).
        arch: a key of :data:`FEATURES`.
        out_channels: the segmenter's classes (stage 3).
        previous_checkpoint: the previous stage's best checkpoint; None starts stage 2 or 3 from
            scratch (the ablation without self-supervised pretraining), with a warning.
    """
    stage = int(stage)
    if stage not in (1, 2, 3):
        raise ValueError(f"lesion_unet has stages 1, 2 and 3, not {stage}")
    if stage == 1:
        return EncoderReconstructor(arch)
    net = _unet(arch, 1 if stage == 2 else out_channels)
    if not previous_checkpoint:
        logger.warning("stage %d of lesion_unet starts from scratch (no previous checkpoint)", stage)
        return net
    parts = ENCODER if stage == 2 else tuple(n for n, _ in net.named_children() if n != HEAD)
    n = _load_parts(net, previous_checkpoint, parts, f"stage {stage - 1} checkpoint")
    logger.info("stage %d starts from %s (%d tensors: %s)", stage, previous_checkpoint, n, ", ".join(parts))
    return net
