"""Open a bundle for inference, in one place for ``evaluate``, ``predict`` and ``export``: a folder or an
exported zip, the network of its ``inference.yaml`` with the trained weights, an ensemble, and
probabilities with optional flip test-time augmentation."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset

from mammo_monai.evaluation.metrics import positive_probability
from mammo_monai.inference.bundle_archive import REQUIRED, BundleError, extract_bundle
from mammo_monai.networks import guard_convolutions
from mammo_monai.networks.weights import bf16_supported, enable_cpu_autocast, load_weights
from mammo_monai.training.model_meta import MODEL_META, trained_setting

#: the path a user gave for each bundle :func:`open_bundle` opened, by its (unpacked) folder
_GIVEN: dict[str, str] = {}


def open_bundle(path: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """A bundle folder from a folder or an exported zip, unpacked under ``workdir`` within the limits of
    :mod:`~mammo_monai.inference.bundle_archive` (1 GiB in all, no member over 100:1).

    Raises:
        BundleError: one line naming ``path`` as given and the problem (missing, not a zip, truncated,
            damaged, over a limit, without ``configs/inference.yaml`` or ``models/model.pt``).
    """
    p = Path(path)
    if not p.exists():
        raise BundleError(path, "no such bundle folder or zip file")
    root = p if p.is_dir() else extract_bundle(p, workdir)
    missing = [item for item in REQUIRED if not (root / item).is_file()]
    if missing:
        hint = "; train the bundle first" if p.is_dir() and missing == ["models/model.pt"] else ""
        raise BundleError(path, f"not a trained bundle: no {' and no '.join(missing)}{hint}")
    for meta in (root / "configs" / "metadata.json", root / "models" / MODEL_META):
        try:
            json.loads(meta.read_text()) if meta.is_file() else None
        except (ValueError, UnicodeDecodeError) as err:
            raise BundleError(path, f"{meta.relative_to(root)} is not valid JSON ({err})") from err
    _GIVEN[str(root.resolve())] = str(path)
    return root


def given_name(bundle_dir: str | os.PathLike) -> str:
    """The path a user gave for a bundle opened by :func:`open_bundle` (not its temporary unpacked folder)."""
    return _GIVEN.get(str(Path(bundle_dir).resolve()), str(bundle_dir))


def is_lesion_segmenter(bundle_dir: str | os.PathLike) -> bool:
    """True for a trained lesion segmenter (its recorded architecture is a U-Net): its output is a map,
    and it classifies images only together with a patch classifier (segment-then-classify)."""
    return str(trained_setting(bundle_dir, "arch", "")).startswith("unet")


def build_inference_network(bundle_dir: str | os.PathLike) -> torch.nn.Module:
    """The network of the bundle's ``inference.yaml`` with ``models/model.pt`` loaded strictly, in eval mode.

    Raises:
        BundleError: the config cannot build its ``network_def`` (a missing module, a bad ``$``
            expression, ...) or the weights cannot be loaded into it; the message names the bundle.
    """
    bundle = Path(bundle_dir).resolve()
    parser = ConfigParser()
    sys.path.insert(0, str(bundle))  # an exported bundle's configs import its scripts/ package
    try:
        parser.read_config(str(bundle / "configs" / "inference.yaml"))
        parser["bundle_root"] = str(bundle)
        net = parser.get_parsed_content("network_def")
    except Exception as err:  # noqa: BLE001 - whatever a config does wrong, the user gets one line naming it
        raise BundleError(
            given_name(bundle), f"configs/inference.yaml cannot build network_def: {config_error(err)}"
        ) from err
    finally:
        sys.path.remove(str(bundle))
    try:
        load_weights(net, bundle / "models" / "model.pt", "trained model")
    except (OSError, ValueError, RuntimeError) as err:
        raise BundleError(given_name(bundle), str(err).replace(str(bundle) + os.sep, "")) from err
    return net.eval()


def config_error(err: BaseException) -> str:
    """The innermost cause of a MONAI config error, in one line (MONAI wraps it with the whole expression)."""
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, SyntaxError) and err.text:
        return f"SyntaxError: {err.msg} in the expression {err.text.strip()[:200]!r}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


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
