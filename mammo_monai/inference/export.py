"""Export a trained bundle as ``<name>-<version>.zip`` in the Model Zoo layout, with TorchScript and ONNX."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.data import save_net_with_metadata

from mammo_monai.inference.backend_choice import RECORD_KEY, backend_record, weights_key
from mammo_monai.inference.bundle import config_files
from mammo_monai.inference.bundle_scripts import runtime_requirements, write_bundle_scripts
from mammo_monai.inference.export_card import card_section, eval_metrics, trained_sentence, write_card
from mammo_monai.inference.onnx_runtime import DYNAMIC_AXES, ONNX_OPSET, check_onnx, export_onnx
from mammo_monai.inference.opened_bundle import CALIBRATION_FILE, OpenedBundle, open_bundle
from mammo_monai.io.atomic import atomic_path, write_json
from mammo_monai.training.model_meta import MODEL_META, without_machine_paths, write_model_meta

logger = logging.getLogger(__name__)

#: what goes into the zip; stage checkpoints, evaluation output and local runs stay behind
KEEP = ("configs", "docs", "LICENSE")


def trained_metadata(bundle: OpenedBundle) -> dict:
    """``metadata.json`` as it is true for the trained weights: the input size the network was trained
    at, its preprocessing (without the training machine's paths), a description that ends with how the
    weights were trained and ``eval_metrics`` with the published checkpoint's validation figures (both
    from the training record in ``model_meta.json``: :mod:`~mammo_monai.inference.export_card`), and each
    output's description naming the activation the bundle declares (``model.ts`` returns the logits that
    ``metadata.json`` states; ``output_activation`` in ``inference.yaml`` turns them into probabilities)."""
    out = json.loads(json.dumps(bundle.metadata))
    size = bundle.input_size
    training = bundle.trained.get("training")
    out["description"] = f"{out.get('description', '').rstrip()} {trained_sentence(size, training)}".strip()
    out["eval_metrics"] = eval_metrics(out.get("eval_metrics") or {}, training)
    fmt = out["network_data_format"]
    fmt["inputs"]["image"]["spatial_shape"] = [int(size[0]), int(size[1])]
    preprocessing = without_machine_paths(bundle.preprocessing_record or None)
    if preprocessing:
        fmt["inputs"]["image"]["preprocessing"] = preprocessing
    norm = bundle.trained.get("input_norm")
    if norm:
        fmt["inputs"]["image"]["normalisation_inside_network"] = {"mean": norm[0], "std": norm[1]}
    for tensor in fmt["outputs"].values():
        tensor["description"] = (
            f"{tensor.get('type', 'logits')} of models/model.ts; {bundle.output_activation} (output_activation in "
            "configs/inference.yaml) gives the probabilities inference writes"
        )
    return out


def write_trained_files(net: torch.nn.Module, bundle: OpenedBundle, stage: Path, meta: dict) -> None:
    """Into the export folder ``stage``: ``models/model.pt`` as a plain state_dict (what ``monai.bundle.load``
    and the Model Zoo read), ``models/model_meta.json`` without the training machine's paths, and the
    model card with its section on the trained weights."""
    torch.save(net.state_dict(), stage / "models" / "model.pt")
    if (bundle.folder / "models" / MODEL_META).is_file():
        write_model_meta(stage / "models" / MODEL_META, bundle.trained)
    if bundle.calibration is not None:  # a calibrated bundle stays calibrated when exported
        write_json(bundle.calibration.to_record(), stage / "models" / CALIBRATION_FILE)
    preprocessing = meta["network_data_format"]["inputs"]["image"].get("preprocessing")
    section = card_section(bundle.input_size, bundle.trained.get("training"), preprocessing, bundle.calibration)
    write_card(bundle.folder / "docs" / "README.md", stage / "docs" / "README.md", section)


def export_bundle(
    bundle_dir: str | os.PathLike, out_dir: str | os.PathLike, validation_manifest: str | os.PathLike | None = None
) -> Path:
    """Write ``<out>/<name>-<version>.zip``: configs, docs (the model card with a section on the trained
    weights), LICENSE, ``models/model.pt`` (a plain state_dict, as ``monai.bundle.load`` reads it),
    ``models/model_meta.json`` (without the training machine's paths), ``models/model.ts`` (TorchScript,
    traced and checked against the eager network) and ``models/model.onnx`` (opset :data:`ONNX_OPSET`, dynamic batch axis, checked with
    ONNX Runtime against the eager network within 1e-4 at batch 1 and 3). ``metadata.json`` records the
    ONNX file under the top-level key ``onnx``: ``{"file", "opset", "dynamic_axes"}`` (outside
    ``network_data_format``, whose fields the Model Zoo schema fixes); a network the ONNX exporter cannot
    export (e.g. an adaptive pooling to a size that does not divide its input) is exported without it,
    with ``{"file": None, "reason"}`` and a warning. With ``validation_manifest`` (a prepared manifest),
    ``metadata.json`` also records the inference backend chosen on its validation images and what was
    measured (:func:`~mammo_monai.inference.backend_choice.backend_record`). Written to a temporary
    name, then renamed."""
    bundle = Path(bundle_dir).resolve()
    if not (bundle / "models" / "model.pt").is_file():
        raise FileNotFoundError(f"{bundle}: models/model.pt not found; train the bundle first")
    opened = open_bundle(bundle, bundle)  # a folder: nothing is unpacked
    name, version = opened.name, opened.metadata["version"]
    net = opened.network
    h, w = opened.input_size
    example = torch.rand(1, 1, int(h), int(w))
    traced = _traced(net, example, bundle)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}-{version}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / name
        _copy_kept(bundle, stage)
        (stage / "models").mkdir(parents=True)
        trained_meta = trained_metadata(opened)
        write_trained_files(net, opened, stage, trained_meta)
        trained_meta["onnx"] = _onnx_export(net, example, stage / "models" / "model.onnx", bundle.name)
        if validation_manifest is not None:  # the backend `predict --backend auto` runs, chosen per bundle
            onnx_path = stage / "models" / "model.onnx"
            trained_meta[RECORD_KEY] = backend_record(
                net, opened, validation_manifest, onnx_path if onnx_path.is_file() else None
            )
        write_bundle_scripts(stage)  # runs with MONAI alone: the package travels in scripts/
        required = {k: v for k, v in trained_meta.get("required_packages_version", {}).items() if k != "mammo-monai"}
        trained_meta["required_packages_version"] = {**required, **runtime_requirements()}
        (stage / "configs" / "metadata.json").write_text(json.dumps(trained_meta, indent=2))
        _save_torchscript(traced, bundle, stage, trained_meta)
        with atomic_path(target) as part, zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(stage.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(Path(tmp)))
    return target


def _traced(net: torch.nn.Module, example: torch.Tensor, bundle: Path) -> torch.jit.ScriptModule:
    """``net`` traced with TorchScript on ``example``; raises ``RuntimeError`` when the trace's output differs."""
    with torch.no_grad():
        traced = torch.jit.trace(net, example)
        if not torch.allclose(traced(example), net(example), atol=1e-5):
            raise RuntimeError(f"{bundle}: TorchScript output differs from the network's")
    return traced


def _copy_kept(bundle: Path, stage: Path) -> None:
    """Copy the folders and files of :data:`KEEP` that ``bundle`` has into ``stage``."""
    for item in KEEP:
        src = bundle / item
        if src.is_dir():
            shutil.copytree(src, stage / item)
        elif src.is_file():
            shutil.copy2(src, stage / item)


def _onnx_export(net: torch.nn.Module, example: torch.Tensor, onnx_path: Path, name: str) -> dict:
    """Export ``net`` to ``onnx_path``, checked with ONNX Runtime at batch 1 and 3; returns ``metadata.json``'s
    ``onnx`` record, ``{"file": None, "reason"}`` (and a warning, and no file) when the export or check fails."""
    try:
        onnx_file = export_onnx(net, example, onnx_path)
        check_onnx(onnx_file, net, [example, torch.rand(3, *example.shape[1:])], atol=1e-4)
        return {
            "file": "models/model.onnx",
            "weights_key": weights_key(net, example.shape[-2:]),  # used only with these weights
            "opset": ONNX_OPSET,
            "dynamic_axes": {k: list(v) for k, v in DYNAMIC_AXES.items()},
        }
    except Exception as err:  # noqa: BLE001 - ONNX is an extra: model.ts stays the bundle's network
        onnx_path.unlink(missing_ok=True)
        first = (str(err).splitlines() or [""])[0]  # an exception may carry no message at all
        record = {"file": None, "reason": f"{type(err).__name__}: {first[:300]}".rstrip(": ")}
        logger.warning("%s: no models/model.onnx in the export: %s", name, record["reason"])
        return record


def _save_torchscript(traced: torch.jit.ScriptModule, bundle: Path, stage: Path, trained_meta: dict) -> None:
    """``models/model.ts`` with the metadata and the merged inference config inside, as ``monai.bundle
    ckpt_export`` writes it."""
    inference = ConfigParser.load_config_files(config_files(bundle, "inference"))  # merged, common first
    save_net_with_metadata(
        traced,
        str(stage / "models" / "model"),
        include_config_vals=False,
        append_timestamp=False,
        meta_values=trained_meta,
        more_extra_files={"inference.json": json.dumps(inference).encode()},
    )
