"""Open a bundle for inference, in one place for ``evaluate``, ``predict`` and ``export``: a folder or an
exported zip, the network of its ``inference.yaml`` with the trained weights, an ensemble, and
probabilities with optional flip test-time augmentation."""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset

from mammo_monai.evaluation.metrics import positive_probability
from mammo_monai.networks import guard_convolutions
from mammo_monai.networks.weights import bf16_supported, enable_cpu_autocast, load_weights
from mammo_monai.training.model_meta import trained_setting


def open_bundle(path: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """A bundle folder from a folder or an exported zip (extracted under ``workdir``)."""
    p = Path(path)
    if p.is_dir():
        return p
    with zipfile.ZipFile(p) as zf:
        zf.extractall(workdir)
        top = {Path(n).parts[0] for n in zf.namelist()}
    if len(top) != 1:
        raise ValueError(f"{p}: expected one bundle folder in the zip, found {sorted(top)}")
    return Path(workdir) / top.pop()


def is_lesion_segmenter(bundle_dir: str | os.PathLike) -> bool:
    """True for a trained lesion segmenter (its recorded architecture is a U-Net): its output is a map,
    and it classifies images only together with a patch classifier (segment-then-classify)."""
    return str(trained_setting(bundle_dir, "arch", "")).startswith("unet")


def build_inference_network(bundle_dir: str | os.PathLike) -> torch.nn.Module:
    """The network of the bundle's ``inference.yaml`` with ``models/model.pt`` loaded strictly, in eval mode."""
    bundle = Path(bundle_dir).resolve()
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.yaml"))
    parser["bundle_root"] = str(bundle)
    sys.path.insert(0, str(bundle))  # an exported bundle's configs import its scripts/ package
    try:
        net = parser.get_parsed_content("network_def")
    finally:
        sys.path.remove(str(bundle))
    load_weights(net, bundle / "models" / "model.pt", "trained model")
    return net.eval()


FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def load_networks(
    bundle: Path,
    ensemble: Sequence[str | os.PathLike] = (),
    workdir: str | os.PathLike = ".",
    bf16: bool | str = "auto",
) -> list[torch.nn.Module]:
    """The bundle's network plus one per ``ensemble`` entry (a checkpoint of the same architecture,
    or another bundle folder / zip), in eval mode."""
    nets = [build_inference_network(bundle)]
    for i, item in enumerate(ensemble):
        p = Path(item)
        if p.is_dir() or p.suffix == ".zip":
            nets.append(build_inference_network(open_bundle(p, Path(workdir) / f"ensemble{i}")))
        else:
            net = build_inference_network(bundle)
            load_weights(net, p, "ensemble checkpoint")
            nets.append(net)
    for net in nets:
        guard_convolutions(net)  # networks/onednn_guards.py: channels_last and bf16 reach two oneDNN bugs
        net.to(memory_format=torch.channels_last)
        if bf16 is True or (bf16 == "auto" and bf16_supported()):
            enable_cpu_autocast(net)
    return nets


@torch.inference_mode()
def predict_probabilities(
    networks: Sequence[torch.nn.Module], data: list[dict[str, Any]], transform, tta: bool = False, batch_size: int = 4
) -> np.ndarray:
    """P(malignant) per item (softmax of two logits, sigmoid of one) averaged over the networks and, with ``tta``, over the four
    flips (none, horizontal, vertical, both)."""
    loader = DataLoader(Dataset(data, transform), batch_size=batch_size, shuffle=False, num_workers=0)
    out = []
    for batch in loader:
        x = batch["image"].float().to(memory_format=torch.channels_last)
        probs = torch.zeros(x.shape[0])
        flips = FLIPS if tta else ((),)
        for net in networks:
            for dims in flips:
                xi = torch.flip(x, dims) if dims else x
                probs += positive_probability(net(xi))
        out.append(probs / (len(networks) * len(flips)))
    return torch.cat(out).numpy()
