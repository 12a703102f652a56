"""The trained model of a finished training as an MLflow logged model: signature, registry entry,
and the exported bundle zip attached."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.tracking.runs import RUN_RECORD, fluent_tracking_uri
from mammo_monai.training.distributed import is_main_process

logger = logging.getLogger(__name__)


def log_trained_model(bundle_root: str, run_id: str, tracking_uri: str, register: bool = True) -> dict[str, Any]:
    """Log ``<bundle>/models/model.pt`` (built as inference builds it) into run ``run_id``.

    The logged model gets a signature from a real forward pass at the trained input size (input
    float32 (N, 1, H, W), output the logits (N, classes)), is registered under the bundle's name and
    carries the exported bundle zip (``export_bundle``) as an extra file; the zip is also an artifact
    of the run. Returns ``{"model_uri", "registered_name", "version", "zip"}``.
    """
    import mlflow
    import monai
    from mlflow.models import infer_signature

    import mammo_monai

    bundle = Path(bundle_root).resolve()
    opened = open_bundle(bundle, bundle)  # a folder: nothing is unpacked
    name, net = opened.name, opened.network
    h, w = (int(v) for v in opened.trained.get("image_size", [224, 224]))
    example = torch.rand(1, 1, h, w)
    with torch.no_grad():
        out = net(example)
    signature = infer_signature(example.numpy(), out.numpy())
    requirements = [
        f"torch=={torch.__version__.split('+')[0]}",
        f"monai=={monai.__version__}",
        f"mammo-monai=={mammo_monai.__version__}",
    ]
    # the fluent API (log_model) needs the URI set globally; it is restored exactly afterwards
    with fluent_tracking_uri(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        zip_path = export_bundle(bundle, tmp)
        mlflow.MlflowClient(tracking_uri=tracking_uri).log_artifact(run_id, str(zip_path), "bundle")
        with mlflow.start_run(run_id=run_id):
            # "pt2" (torch.export) loads without this package; the signature comes from the same example
            info = mlflow.pytorch.log_model(
                net,
                name="model",
                signature=signature,
                registered_model_name=name if register else None,
                extra_files=[str(zip_path)],
                input_example=example.numpy(),
                serialization_format="pt2",
                pip_requirements=requirements,
            )
    return {
        "model_uri": info.model_uri,
        "registered_name": name if register else None,
        "version": getattr(info, "registered_model_version", None),
        "zip": Path(zip_path).name,
    }


class LogTrainedModel:
    """When the last stage of a training completes, log the bundle's published model into the
    training's parent MLflow run (see :func:`log_trained_model`). Attach after ``PublishBest``. Under
    ``torchrun`` only rank 0 logs. A stage without a best checkpoint (its key metric was never a
    number, e.g. NaN: see :class:`~mammo_monai.training.SaveBest`) logs and registers nothing."""

    def __init__(self, bundle_root: str, stage_dir: str, last_stage: bool, register: bool = True) -> None:
        self.bundle_root, self.stage_dir = bundle_root, Path(stage_dir)
        self.last_stage, self.register = bool(last_stage), bool(register)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        record = self.stage_dir / RUN_RECORD
        if not self.last_stage or not is_main_process() or not record.is_file():
            return
        if not (self.stage_dir / "model.pt").is_file():  # SaveBest never saved: no validation gave a number
            logger.warning(
                "%s: no best checkpoint (the key metric was never a number): no model logged or registered",
                self.stage_dir,
            )
            return
        info = json.loads(record.read_text())
        logged = log_trained_model(self.bundle_root, info["parent_run_id"], info["tracking_uri"], self.register)
        registered = (
            f"registered as {logged['registered_name']} v{logged['version']}" if logged["version"] else "not registered"
        )
        logger.info("logged model %s (%s)", logged["model_uri"], registered)
