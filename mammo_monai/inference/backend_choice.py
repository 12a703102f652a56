"""Which runtime ``predict --backend auto`` uses for a bundle, decided on the bundle's validation images, and
the ONNX file the runtimes read, exported once per weights and input size.

The rule: of the candidates (:data:`VARIANTS`), the fastest whose validation AUC differs from eager
float32's by at most :data:`AUC_TOLERANCE` and whose decisions at the model's stored thresholds flip on
at most :data:`FLIP_TOLERANCE` of the images. The choice and what was measured for every candidate (AUC
difference, flip rate, images/s) are recorded in the exported ``metadata.json`` under
:data:`RECORD_KEY`; :func:`runtime_network` reads them. Without a record it falls back to the fixed rule
of :func:`~mammo_monai.inference.onnx_runtime.inference_backend` and logs why.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from mammo_monai.evaluation.metrics import positive_probability
from mammo_monai.inference.bundle import ready_for_inference
from mammo_monai.inference.onnx_runtime import (
    ONNX_OPSET,
    OnnxNetwork,
    OpenVinoNetwork,
    check_onnx,
    export_onnx,
    inference_backend,
    runtime_available,
)
from mammo_monai.io.atomic import atomic_path
from mammo_monai.networks.weights import bf16_supported, enable_cpu_autocast

if TYPE_CHECKING:
    from mammo_monai.inference.opened_bundle import OpenedBundle

logger = logging.getLogger(__name__)

AUC_TOLERANCE, FLIP_TOLERANCE = 0.002, 0.005
RECORD_KEY = "inference_backend"
REFERENCE = "eager-fp32"
#: candidate -> (runtime, precision); "bf16" ones only where the CPU has native bf16
VARIANTS: dict[str, tuple[str, str]] = {
    REFERENCE: ("eager", "fp32"),
    "eager-bf16": ("eager", "bf16"),
    "onnxruntime-fp32": ("onnxruntime", "fp32"),
    "openvino-fp32": ("openvino", "f32"),
    "openvino-bf16": ("openvino", "bf16"),
}


def weights_key(network: nn.Module, shape: Sequence[int]) -> str:
    """A hash of ``network``'s weights, the input ``shape`` (H, W) and the ONNX opset: an exported file's name."""
    h = hashlib.sha256(f"{tuple(int(s) for s in shape)} opset {ONNX_OPSET}".encode())
    for name, tensor in network.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


def onnx_cache_dir(bundle: OpenedBundle) -> Path:
    """``<bundle>/cache/onnx`` for a bundle folder; for a zip (unpacked anew on every call) the user's cache,
    ``$XDG_CACHE_HOME/mammo-monai/onnx`` (default ``~/.cache``): files there are named by their weights' hash."""
    given = Path(bundle.given)
    if given.is_dir():
        return given / "cache" / "onnx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mammo-monai" / "onnx"


def onnx_file(network: nn.Module, example: torch.Tensor, bundle: OpenedBundle, workdir: str | os.PathLike) -> Path:
    """The ONNX file of ``network`` at ``example``'s size: the exported bundle's ``models/model.onnx`` (written
    and checked with the weights by ``export``), else a cached export (:func:`onnx_cache_dir`, named by
    :func:`weights_key`; exported, checked against the network within 1e-3, then renamed into place), else,
    where the cache cannot be written, a fresh export under ``workdir``."""
    recorded = bundle.metadata.get("onnx") or {}
    shipped = bundle.folder / "models" / "model.onnx"
    key = weights_key(network, example.shape[-2:])
    if recorded.get("file") == "models/model.onnx" and recorded.get("weights_key") == key and shipped.is_file():
        return shipped  # exported from exactly these weights (model.pt replaced since: exported anew)
    name = f"{key}.onnx"
    cached = onnx_cache_dir(bundle) / name
    if cached.is_file():
        return cached
    try:
        with atomic_path(cached) as part:
            export_onnx(network, example, part)
            check_onnx(part, network, [example], atol=1e-3)
        return cached
    except OSError as err:  # a read-only bundle or home: export for this call only
        logger.info("ONNX export not cached (%s); exporting for this run", err)
        path = export_onnx(network, example, Path(workdir) / name)
        check_onnx(path, network, [example], atol=1e-3)
        return path


def build_variant(network: nn.Module, variant: str, onnx_path: str | os.PathLike | None) -> nn.Module:
    """``network`` (eval, float32, no autocast) as candidate ``variant`` of :data:`VARIANTS` runs it."""
    runtime, precision = VARIANTS[variant]
    if runtime == "eager":
        return enable_cpu_autocast(copy.deepcopy(network)) if precision == "bf16" else network
    if onnx_path is None:
        raise RuntimeError("no ONNX file")
    return OnnxNetwork(onnx_path) if runtime == "onnxruntime" else OpenVinoNetwork(onnx_path, precision)


def unavailable(variant: str) -> str | None:
    """Why ``variant`` cannot run on this machine, or None."""
    runtime, precision = VARIANTS[variant]
    if precision == "bf16" and not bf16_supported():
        return "no native bf16 on this CPU"
    return runtime_available(runtime)


@torch.inference_mode()
def _run(
    net: nn.Module, batches: Sequence[torch.Tensor], probability: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[np.ndarray, float]:
    """P(malignant) over ``batches`` and images/s (the first batch, a warm-up, not timed when there are more)."""
    probs, timed, seconds = [], 0, 0.0
    for i, x in enumerate(batches):
        start = time.perf_counter()
        probs.append(probability(net(x.contiguous(memory_format=torch.channels_last)).float()))
        if i or len(batches) == 1:
            seconds += time.perf_counter() - start
            timed += x.shape[0]
    return torch.cat(probs).numpy(), timed / max(seconds, 1e-9)


def measure_variants(
    build: Callable[[str], nn.Module],
    batches: Sequence[torch.Tensor],
    labels: np.ndarray,
    thresholds: Sequence[float],
    variants: Sequence[str] = tuple(VARIANTS),
    probability: Callable[[torch.Tensor], torch.Tensor] = positive_probability,
) -> dict[str, Any]:
    """Run every variant (``build(name)`` makes it) on the validation ``batches`` and apply the rule.

    Returns:
        The record: ``choice`` (the fastest accepted variant; the reference, eager fp32, is always
        accepted), ``rule``, ``thresholds``, ``images``, and ``measured``: per variant ``auc_difference``,
        ``flip_rate``, ``images_per_second`` and ``accepted``, or ``skipped`` with the reason.

    Raises:
        ValueError: the validation images hold one class, so AUC is undefined.
    """
    labels = np.asarray(labels).astype(int)
    if len(set(labels.tolist())) < 2:
        raise ValueError(f"the validation images hold one class only ({len(labels)} images): AUC is undefined")
    ref_probs, ref_rate = _run(build(REFERENCE), batches, probability)
    ref_auc = float(roc_auc_score(labels, ref_probs))
    measured: dict[str, dict[str, Any]] = {}
    for name in variants:
        why = unavailable(name)
        try:
            probs, rate = (ref_probs, ref_rate) if name == REFERENCE else (None, 0.0)
            if why is None and name != REFERENCE:
                probs, rate = _run(build(name), batches, probability)
        except Exception as err:  # noqa: BLE001 - a runtime that fails is a candidate less
            why = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        if why is not None or probs is None:
            measured[name] = {"skipped": why}
            continue
        flips = max(float(np.mean((probs >= t) != (ref_probs >= t))) for t in thresholds)
        auc_diff = abs(float(roc_auc_score(labels, probs)) - ref_auc)
        measured[name] = {
            "auc_difference": round(auc_diff, 5),
            "flip_rate": round(flips, 5),
            "images_per_second": round(rate, 3),
            "accepted": auc_diff <= AUC_TOLERANCE and flips <= FLIP_TOLERANCE,
        }
    accepted = [n for n, m in measured.items() if m.get("accepted")]
    return {
        "choice": max(accepted, key=lambda n: measured[n]["images_per_second"]) if accepted else REFERENCE,
        "rule": f"fastest with |AUC - AUC(eager fp32)| <= {AUC_TOLERANCE} and decisions flipped on <= "
        f"{FLIP_TOLERANCE:.1%} of the validation images",
        "thresholds": [float(t) for t in thresholds],
        "images": int(len(labels)),
        "reference_auc": round(ref_auc, 5),
        "measured": measured,
    }


def decide_backend(
    network: nn.Module,
    batches: Sequence[torch.Tensor],
    labels: np.ndarray,
    thresholds: Sequence[float],
    onnx_path: str | os.PathLike | None,
    probability: Callable[[torch.Tensor], torch.Tensor] = positive_probability,
) -> dict[str, Any]:
    """:func:`measure_variants` of ``network`` (eval, float32) with its ONNX file ``onnx_path``; ``probability``
    turns its logits into P(malignant) (the bundle's declared activation)."""
    return measure_variants(
        lambda v: build_variant(network, v, onnx_path), batches, labels, thresholds, probability=probability
    )


def decision_thresholds(bundle: OpenedBundle) -> list[float]:
    """The model's decision thresholds: its declared decision rule's, else 0.5."""
    threshold = bundle.decision_rule.threshold
    return [float(threshold)] if threshold is not None else [0.5]


def recorded_choice(bundle: OpenedBundle) -> tuple[str | None, str]:
    """The variant recorded in the bundle's ``metadata.json`` that runs here (the recorded choice, else the
    fastest other accepted one), and a reason when there is none."""
    record = bundle.metadata.get(RECORD_KEY)
    if not record or not record.get("measured"):
        return None, "the bundle records no backend choice (export it with a validation manifest)"
    measured = record["measured"]
    ranked = sorted(
        (n for n, m in measured.items() if m.get("accepted") and n in VARIANTS),
        key=lambda n: (n != record.get("choice"), -measured[n]["images_per_second"]),
    )
    for name in ranked:
        if unavailable(name) is None:
            return name, ""
    return None, f"none of the recorded accepted backends ({', '.join(ranked) or 'none'}) runs here"


def runtime_network(
    network: nn.Module, backend: str, example: torch.Tensor, bundle: OpenedBundle, workdir: str | os.PathLike
) -> nn.Module:
    """``network`` as ``predict`` runs it: with "auto", the backend recorded for the bundle
    (:func:`recorded_choice`), else :func:`inference_backend`'s fixed rule with the reason logged; a named
    backend as :func:`inference_backend` runs it. Runtimes read :func:`onnx_file` (never re-exported per call)."""
    name = None
    if backend == "auto":
        name, why = recorded_choice(bundle)
        if name is None:
            logger.info("%s: predict --backend auto uses the default rule: %s", bundle.given, why)
        else:
            logger.info("%s: predict --backend auto runs %s, recorded for this bundle", bundle.given, name)
    needs_onnx = VARIANTS[name][0] != "eager" if name else backend not in ("eager",)
    path = None
    if needs_onnx:
        try:
            path = onnx_file(network, example, bundle, workdir)
        except Exception as err:  # noqa: BLE001 - an optional speed-up: inference_backend falls back to eager
            logger.warning("ONNX export failed (%s: %s); running eager PyTorch", type(err).__name__, err)
            return inference_backend(network, "eager", example, workdir)
    if name is not None:
        return build_variant(network, name, path)
    return inference_backend(network, backend, example, workdir, onnx_path=path)


def validation_batches(
    manifest_dir: str | os.PathLike, bundle: OpenedBundle, max_images: int = 200, batch_size: int = 4
) -> tuple[list[torch.Tensor], np.ndarray]:
    """Up to ``max_images`` images of the manifest's validation split (a seeded sample), as the model sees
    them (the cached PNGs, scaled), in batches, and their labels.

    Raises:
        ValueError: the manifest was preprocessed otherwise than the model's training data, or has no
            validation images.
    """
    import pandas as pd

    from mammo_monai.data.cache_record import check_same_preprocessing, read_record
    from mammo_monai.transforms.pipelines import eval_transforms

    check_same_preprocessing(bundle.preprocessing_record, read_record(manifest_dir), str(manifest_dir))
    images = pd.read_csv(Path(manifest_dir) / "images.csv")
    val = images[images["split"] == "val"]
    if val.empty:
        raise ValueError(f"{manifest_dir}: no validation images")
    val = val.sample(n=min(max_images, len(val)), random_state=0)
    transform = eval_transforms(from_cache=True)
    tensors = [torch.as_tensor(transform({"image": p})["image"]).float() for p in val["image"]]
    batches = [torch.stack(tensors[i : i + batch_size]) for i in range(0, len(tensors), batch_size)]
    return batches, val["label"].to_numpy()


def backend_record(
    network: nn.Module,
    bundle: OpenedBundle,
    manifest_dir: str | os.PathLike,
    onnx_path: str | os.PathLike | None,
    max_images: int = 200,
) -> dict[str, Any]:
    """What ``export`` records under :data:`RECORD_KEY`: :func:`measure_variants` of ``network`` on the
    validation images of ``manifest_dir``, run as ``predict`` runs it (guarded convolutions, channels_last,
    the bundle's declared activation); ``{"choice": None, "reason"}`` when that cannot be measured."""
    try:
        batches, labels = validation_batches(manifest_dir, bundle, max_images)
        net = ready_for_inference([copy.deepcopy(network).eval()], bf16=False)[0]
        return decide_backend(net, batches, labels, decision_thresholds(bundle), onnx_path, bundle.probability)
    except Exception as err:  # noqa: BLE001 - the choice is an extra: predict falls back to the default rule
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        logger.warning("%s: no inference backend chosen: %s", bundle.folder.name, reason)
        return {"choice": None, "reason": reason}
