"""Pretrained weights the way users run them: torchvision's ImageNet ResNets downloaded once into the
user's cache (hash checked), or a local file; ImageNet normalisation built into the network."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from mammo_monai.networks.onednn_guards import GuardedConv2d

logger = logging.getLogger(__name__)

#: torchvision's ImageNet-1k (V1) ResNet weights: file URL and the SHA-256 prefix in its name
TORCHVISION_IMAGENET = {
    "resnet50": ("https://download.pytorch.org/models/resnet50-0676ba61.pth", "0676ba61"),
    "resnet18": ("https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd"),
    # torchvision's VGG16_Weights.IMAGENET1K_V1 (networks/vgg.py)
    "vgg16": ("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),
    # torchvision's EfficientNet_V2_S_Weights.IMAGENET1K_V1 (trained at 384 px; networks/efficientnet_v2.py)
    "efficientnetv2-s": ("https://download.pytorch.org/models/efficientnet_v2_s-dd5fe13b.pth", "dd5fe13b"),
    # Cadene's pretrainedmodels file, the one MONAI's SEResNext50(pretrained=True) downloads; its name's
    # suffix is not documented as a SHA-256 prefix, so no hash is checked for it
    "seresnext50": ("http://data.lip6.fr/cadene/pretrainedmodels/se_resnext50_32x4d-a260b3a4.pth", None),
}
#: ImageNet's per-channel mean and std, averaged over RGB: the normalisation of a grey image that the
#: folded (summed) stem of an ImageNet network sees as the same grey repeated over three channels
IMAGENET_GREY = (0.449, 0.226)
NO_WEIGHTS = (None, "", "none", "null", "scratch")


def _sha256_prefix(path: Path, n: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def resolve_weights(
    spec: str | os.PathLike | None, arch: str, cache_dir: str | os.PathLike | None = None
) -> str | None:
    """The weights file for ``spec``: None (train from scratch, with a warning), ``"imagenet"``
    (torchvision's file for ``arch``, downloaded once into ``cache_dir``, default torch hub's
    ``checkpoints`` folder, and checked against its published hash) or a local file path.

    Raises:
        ValueError: ``imagenet`` for an architecture torchvision has no weights for.
        RuntimeError: the download failed (offline) or the file's hash does not match.
        FileNotFoundError: a local path that does not exist.
    """
    if spec is None or str(spec).strip().lower() in NO_WEIGHTS:
        logger.warning(
            "no pretrained weights for %s: every layer trains from the first stage (the from-scratch recipe)", arch
        )
        return None
    if str(spec).lower() != "imagenet":
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"{spec}: pretrained weights file not found")
        return str(spec)
    if arch not in TORCHVISION_IMAGENET:
        raise ValueError(f"no ImageNet weights for arch {arch!r}; known for {sorted(TORCHVISION_IMAGENET)}")
    url, prefix = TORCHVISION_IMAGENET[arch]
    folder = Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / url.rsplit("/", 1)[-1]
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=True)
        except Exception as err:  # URLError offline, RuntimeError on a hash mismatch
            raise RuntimeError(
                f"cannot download the ImageNet weights of {arch} from {url} ({type(err).__name__}: {err}); "
                f"offline, copy the file to {path} or pass pretrained_weights=<file>"
            ) from err
    if prefix and _sha256_prefix(path, len(prefix)) != prefix:
        raise RuntimeError(
            f"{path}: SHA-256 does not start with {prefix}: a damaged or different file; delete it to download again"
        )
    return str(path)


def input_normalisation(spec: str | os.PathLike | None) -> list[float] | None:
    """[mean, std] for a network started from ImageNet weights (``spec`` "imagenet" or a file), else None."""
    return None if spec is None or str(spec).strip().lower() in NO_WEIGHTS else list(IMAGENET_GREY)


class NormalizedConv2d(GuardedConv2d):
    """The stem convolution of a network trained from ImageNet weights: ``(x - mean) / std`` first.

    Kept inside the network (its class only; ``mean`` and ``std`` are plain attributes, not state),
    so every path that runs the network (training, evaluation, predict, the exported TorchScript)
    normalises the same way and ``state_dict`` keys do not change."""

    input_mean: float = 0.0
    input_std: float = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward((x - self.input_mean) / self.input_std)


def normalize_input(
    net: torch.nn.Module, norm: list[float] | tuple[float, float] | None, stem: str = "conv1"
) -> torch.nn.Module:
    """Make ``net``'s stem convolution a :class:`NormalizedConv2d` with ``norm`` = (mean, std); None: as is."""
    if not norm:
        return net
    conv = net.get_submodule(stem)
    conv.__class__ = NormalizedConv2d
    conv.input_mean, conv.input_std = float(norm[0]), float(norm[1])
    return net


def checkpoint_setting(checkpoint: str | os.PathLike | None, key: str, default: object = None) -> object:
    """A setting recorded beside a checkpoint (``model_meta.json`` in its folder), e.g. the patch
    network's ``input_norm`` for the whole-image network built on it."""
    if not checkpoint:
        return default
    meta = Path(checkpoint).parent / "model_meta.json"
    return json.loads(meta.read_text()).get(key, default) if meta.is_file() else default
