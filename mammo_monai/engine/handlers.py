"""Ignite handlers for staged training: MLflow run extras, validation plots, publishing the best model."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.handlers import MLFlowHandler

from mammo_monai.io.atomic import atomic_path
from mammo_monai.engine.inference import MODEL_META, write_model_meta
from mammo_monai.engine.metrics import pred_label
from mammo_monai.engine.tracking import artifact_location, code_version, data_fingerprint

logger = logging.getLogger(__name__)


class StageMLFlowHandler(MLFlowHandler):
    """MONAI's ``MLFlowHandler`` plus what a staged training needs in its run.

    On start: tags (training id, stage, bundle), parameters (every hyper-parameter, the code
    version, the data table's hash and size) and, as ``executed_config.json``, the resolved
    hyper-parameters with the config files they came from. On completion: the files in
    ``artifacts`` that exist then (best checkpoint, plots, configs), each logged once.

    Args:
        tags: MLflow tags of the run.
        hyperparameters: logged as parameters and in ``executed_config.json``.
        data_table: the CSV the stage trained on (hashed).
        config_files: the bundle config files of this run.
        output_dir: where ``executed_config.json`` is written.
        kwargs: passed to ``MLFlowHandler`` (tracking_uri, experiment_name, run_name, artifacts, ...).
    """

    def __init__(self, tags: dict[str, Any] | None = None, hyperparameters: dict[str, Any] | None = None,
                 data_table: str | None = None, config_files: Sequence[str] = (), output_dir: str | None = None,
                 **kwargs: Any) -> None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or kwargs.get("tracking_uri") or ""
        if kwargs.get("artifact_location") is None and uri:
            kwargs["artifact_location"] = artifact_location(uri, kwargs.get("experiment_name", "monai_experiment"))
        params = {k: (json.dumps(v) if isinstance(v, (list, dict, tuple)) else v) for k, v in (hyperparameters or {}).items()}
        params["code_version"] = code_version()
        if data_table and os.path.isfile(data_table):
            params.update(data_fingerprint(data_table))
        super().__init__(experiment_param=params, **kwargs)
        self.tags = {k: str(v) for k, v in (tags or {}).items()}
        self.hyperparameters = hyperparameters or {}
        self.config_files = [str(c) for c in config_files]
        self.output_dir = output_dir

    def start(self, engine: Engine) -> None:
        super().start(engine)
        run_id = self.cur_run.info.run_id
        for key, value in self.tags.items():
            self.client.set_tag(run_id, key, value)
        if self.output_dir:
            Path(self.output_dir).mkdir(parents=True, exist_ok=True)
            path = Path(self.output_dir) / "executed_config.json"
            path.write_text(json.dumps({"config_files": self.config_files, "hyperparameters": self.hyperparameters}, indent=2, default=str))
            self.client.log_artifact(run_id, str(path), "config")
            for cfg in self.config_files:
                if os.path.isfile(cfg):
                    self.client.log_artifact(run_id, cfg, "config")

    def _log_artifacts(self, artifacts: Sequence[Any]) -> None:
        for path in artifacts:
            if path and os.path.isfile(path):
                self.client.log_artifact(self.cur_run.info.run_id, str(path))

    def complete(self) -> None:
        if self.cur_run:
            self._log_artifacts(self.artifacts)


class ValidationPlots:
    """After each validation epoch, write ``roc.png`` and ``confusion.png`` (and ``*_best.png`` when
    the key metric improved) into ``output_dir``, from the epoch's outputs."""

    def __init__(self, output_dir: str, class_names: Sequence[str] | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names) if class_names else None
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._plot)

    def _reset(self, engine: Engine) -> None:
        self.logits, self.labels = [], []

    def _collect(self, engine: Engine) -> None:
        logits, labels = pred_label(engine.state.output)
        self.logits.append(logits.detach().cpu())
        self.labels.append(labels.cpu())

    def _plot(self, engine: Engine) -> None:
        if not self.logits:
            return
        from mammo_monai.engine.plots import plot_confusion, plot_roc

        self.output_dir.mkdir(parents=True, exist_ok=True)
        probs = torch.softmax(torch.cat(self.logits), 1).numpy()
        labels = torch.cat(self.labels).numpy()
        names = self.class_names or [str(i) for i in range(probs.shape[1])]
        plot_roc(probs, labels, names, self.output_dir / "roc.png")
        plot_confusion(probs.argmax(1), labels, names, self.output_dir / "confusion.png")
        if getattr(engine.state, "best_metric_epoch", -1) == engine.state.epoch:
            for name in ("roc", "confusion"):
                shutil.copyfile(self.output_dir / f"{name}.png", self.output_dir / f"{name}_best.png")
        np.savez(self.output_dir / "last_validation.npz", probs=probs, labels=labels)


class PublishBest:
    """When training completes, copy the stage's best checkpoint to the bundle's ``models/model.pt``
    (through a temporary file), so the bundle always serves its latest finished stage, and record
    ``settings`` (architecture, image size, ...) beside it in ``model_meta.json`` for inference."""

    def __init__(self, source: str, target: str, settings: dict[str, Any] | None = None) -> None:
        self.source, self.target = Path(source), Path(target)
        self.settings = settings or {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if not self.source.is_file():
            logger.warning("no best checkpoint at %s (no validation ran?): %s not updated", self.source, self.target)
            return
        with atomic_path(self.target) as tmp:
            shutil.copyfile(self.source, tmp)
        write_model_meta(self.target.parent / MODEL_META, self.settings)
