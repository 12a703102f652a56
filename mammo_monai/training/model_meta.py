"""What inference must know about trained weights, recorded beside them in ``models/model_meta.json``
(architecture, input size, the cache's preprocessing, input normalisation, class names), and what the
training did: the stages it ran and the validation figures of the published checkpoint."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mammo_monai.io.atomic import write_json

MODEL_META = "model_meta.json"
#: written beside a stage's best checkpoint (``stageN/model.pt``) each time it is saved
BEST_RECORD = "best.json"
#: a finished stage's record (:class:`~mammo_monai.training.resume.StageCheckpoint` writes it)
DONE_RECORD = "done.json"


def trained_settings(bundle_root: str | os.PathLike) -> dict[str, Any]:
    """Everything recorded with the trained weights (``models/model_meta.json``), {} before training; the
    inference configs read it once (``trained``) and take each setting from it."""
    path = Path(bundle_root) / "models" / MODEL_META
    return json.loads(path.read_text()) if path.is_file() else {}


def trained_setting(bundle_root: str | os.PathLike, key: str, default: Any) -> Any:
    """A setting recorded with the trained weights (``models/model_meta.json``: arch, image size,
    ...), so inference builds the network that was trained; ``default`` when absent."""
    return trained_settings(bundle_root).get(key, default)


def without_machine_paths(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``record`` without its absolute paths (e.g. a cache's dataset ``root``): a model travels to other
    machines, and where its data lay on the one that trained it is neither needed nor to be shared."""
    if record is None:
        return None
    return {k: v for k, v in record.items() if not (isinstance(v, str) and Path(v).is_absolute())}


def write_model_meta(path: str | os.PathLike, settings: dict[str, Any]) -> None:
    """Record the settings inference needs next to ``model.pt`` (temporary file, then rename); the
    recorded preprocessing keeps no absolute path."""
    settings = dict(settings)
    if isinstance(settings.get("preprocessing"), Mapping):
        settings["preprocessing"] = without_machine_paths(settings["preprocessing"])
    write_json(settings, path)


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a finite number (JSON has no NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):  # None, a string, a tensor or array of several values
        return None
    return number if math.isfinite(number) else None


def best_record(metric: str | None, value: Any, epoch: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What :data:`BEST_RECORD` holds: the key metric's name, its best value and epoch, and every scalar
    validation metric of that epoch."""
    scalars = {str(k): finite(v) for k, v in metrics.items() if finite(v) is not None}
    return {"metric": metric, "value": finite(value), "epoch": int(epoch), "metrics": scalars}


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def training_record(models_dir: str | os.PathLike, stage: int, training_id: str, epochs: int) -> dict[str, Any]:
    """The stages this training ran up to ``stage`` (which ends now, after ``epochs`` epochs) and the
    validation figures of ``stage``'s best checkpoint, from the stage folders' records.

    Returns:
        ``{"stages": [{"stage", "epochs", "metric", "best", "best_epoch"}, ...], "key_metric": {"name",
        "value", "epoch", "stage"}, "val_metrics": {...}}``; ``key_metric`` is None without validation.
    """
    models = Path(models_dir)
    stages = []
    for k in range(1, int(stage) + 1):
        folder = models / f"stage{k}"
        best = _read(folder / BEST_RECORD)
        if k < int(stage):
            done = _read(folder / DONE_RECORD)
            if done.get("training_id") != training_id:
                continue  # not run by this training (e.g. a fine-tuning that runs only the last stage)
            ran = int(done.get("epochs") or 0)
        else:
            ran = int(epochs)
        stages.append(
            {
                "stage": k,
                "epochs": ran,
                "metric": best.get("metric"),
                "best": best.get("value"),
                "best_epoch": best.get("epoch"),
            }
        )
    last = _read(models / f"stage{int(stage)}" / BEST_RECORD)
    key = (
        {"name": last["metric"], "value": last.get("value"), "epoch": last.get("epoch"), "stage": int(stage)}
        if last.get("metric")
        else None
    )
    return {"stages": stages, "key_metric": key, "val_metrics": last.get("metrics", {})}
