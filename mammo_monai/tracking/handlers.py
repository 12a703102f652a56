"""MLflow handlers for staged training: one nested run per stage under one parent run per training,
runs that are resumed rather than duplicated, and statuses that tell the truth."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from monai.handlers import MLFlowHandler

from mammo_monai.io.atomic import write_json
from mammo_monai.ranks import is_main_process
from mammo_monai.tracking.runs import (
    RUN_RECORD,
    artifact_location,
    code_version,
    data_fingerprint,
    end_stage_run,
    get_experiment_id,
    log_stage_on_parent,
    parent_run,
)
from mammo_monai.tracking.ui import update_runs_view

logger = logging.getLogger(__name__)


def _flat_params(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(v, default=str) if isinstance(v, (list, dict, tuple)) else v) for k, v in values.items()}


def log_dataset(client: Any, run_id: str, table: str, context: str = "train") -> None:
    """Log a manifest / patch table as an MLflow dataset input: its hash (digest), rows, and the
    image count per split as tags."""
    import mlflow.data
    import pandas as pd
    from mlflow.entities import DatasetInput, InputTag

    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    fp = data_fingerprint(table)
    with warnings.catch_warnings():  # MLflow registers its local-file source class twice and says so
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        ds = mlflow.data.from_pandas(
            df,
            source=str(Path(table).resolve()),
            name=Path(table).parent.name or "data",
            digest=fp["data_sha256"],
            targets="label" if "label" in df else None,
        )
    tags = [InputTag(key="mlflow.data.context", value=context)]
    if "split" in df:
        tags += [InputTag(key=f"split_{k}", value=str(v)) for k, v in df["split"].value_counts().sort_index().items()]
    client.log_inputs(run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), tags=tags)])


class StageMLFlowHandler(MLFlowHandler):
    """MONAI's ``MLFlowHandler`` for the trainer of one stage of a staged training.

    The stage's run is nested under the training's parent run (tag ``mlflow.parentRunId``), found by
    its ``training_id`` or created. Its id is kept in ``<stage_dir>/run.json``: a resumed stage
    continues the same run (tagged ``resumed``) instead of starting a second one, and a stage that
    fails or is interrupted is ended FAILED / KILLED (:func:`end_stage_run`). On start it logs tags,
    parameters (every hyper-parameter, the code version, the data table's hash and size), the config
    files (train.yaml and overlays), the resolved configuration and the data table as a dataset
    input; on completion the files in ``artifacts`` that exist then, and the stage's final metrics on
    the parent run (:func:`~mammo_monai.tracking.runs.log_stage_on_parent`). Experiments carry the
    saved view that shows these metrics in the MLflow UI (:mod:`mammo_monai.tracking.ui`).

    Under ``torchrun`` only rank 0 logs: on the other ranks the handler opens no MLflow store (a new
    sqlite store would be created by two processes at once) and attaches nothing.

    Args:
        stage_dir: the stage's checkpoint folder (holds ``run.json``).
        training_id: the training this stage belongs to.
        bundle: the bundle name (parent run name and tag).
        last_stage: True for the training's last stage: its completion ends the parent run FINISHED.
        tags: more MLflow tags of the stage run.
        hyperparameters: logged as parameters and in ``executed_config.json``.
        data_table: the CSV the stage trained on (hashed, logged as a dataset).
        config_files: the bundle config files of this run (train.yaml and overlays).
        resolved_config: optional file holding the fully resolved configuration.
        output_dir: where ``executed_config.json`` is written.
        kwargs: passed to ``MLFlowHandler`` (tracking_uri, experiment_name, run_name, artifacts, ...).
    """

    def __init__(
        self,
        stage_dir: str,
        training_id: str,
        bundle: str,
        last_stage: bool = False,
        tags: dict[str, Any] | None = None,
        hyperparameters: dict[str, Any] | None = None,
        data_table: str | None = None,
        config_files: Sequence[str] = (),
        resolved_config: str | None = None,
        output_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.inactive = not is_main_process()  # MLflow is rank 0's alone
        if self.inactive:  # rank > 0: no MLflow client (MLFlowHandler.__init__ opens the store)
            self.stage_dir, self.resolved_config, self.cur_run = Path(stage_dir), resolved_config, None
            return
        uri = os.environ.get("MLFLOW_TRACKING_URI") or kwargs.get("tracking_uri") or ""
        if kwargs.get("artifact_location") is None and uri:
            kwargs["artifact_location"] = artifact_location(uri, kwargs.get("experiment_name", "monai_experiment"))
        params = _flat_params(hyperparameters or {})
        params["code_version"] = code_version()
        if data_table and os.path.isfile(data_table):
            params.update(data_fingerprint(data_table))
        super().__init__(experiment_param=params, **kwargs)
        self.stage_dir, self.training_id, self.bundle, self.last_stage = (
            Path(stage_dir),
            training_id,
            bundle,
            bool(last_stage),
        )
        self.tags = {k: str(v) for k, v in (tags or {}).items()}
        self.hyperparameters = hyperparameters or {}
        self.data_table = data_table
        self.config_files = [str(c) for c in config_files]
        self.resolved_config = resolved_config
        self.output_dir = output_dir

    def attach(self, engine: Engine) -> None:
        if self.inactive:
            return
        super().attach(engine)
        if not engine.has_event_handler(self._finish, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self._finish)

    def _open_run(self) -> bool:
        """Set ``self.cur_run``: the recorded run of this stage (resume) or a new nested one."""
        uri = self.client.tracking_uri
        exp_id = get_experiment_id(self.client, self.experiment_name, uri)
        self.experiment = self.client.get_experiment(exp_id)
        parent = parent_run(self.client, exp_id, self.training_id, self.bundle)
        record = self.stage_dir / RUN_RECORD
        resumed = False
        if record.is_file():
            info = json.loads(record.read_text())
            if info.get("training_id") == self.training_id:
                try:
                    self.cur_run = self.client.get_run(info["run_id"])
                    resumed = True
                except Exception:  # deleted from the store: start a new run
                    self.cur_run = None
        if resumed:
            self.client.update_run(self.cur_run.info.run_id, status="RUNNING")
            self.client.set_tag(self.cur_run.info.run_id, "resumed", "true")
        else:
            self.cur_run = self.client.create_run(
                exp_id,
                run_name=self.run_name,
                tags={**self.tags, "training_id": self.training_id, "mlflow.parentRunId": parent},
            )
        write_json(
            {
                "run_id": self.cur_run.info.run_id,
                "parent_run_id": parent,
                "tracking_uri": uri,
                "training_id": self.training_id,
                "last_stage": self.last_stage,
            },
            record,
        )
        return resumed

    def start(self, engine: Engine) -> None:
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        resumed = self._open_run()
        if resumed:  # MLflow parameters cannot change: keep what the first attempt logged
            logged = self.client.get_run(self.cur_run.info.run_id).data.params
            self.experiment_param = {k: v for k, v in self.experiment_param.items() if k not in logged}
        super().start(engine)
        run_id = self.cur_run.info.run_id
        for key, value in self.tags.items():
            self.client.set_tag(run_id, key, value)
        if resumed:
            return
        if self.output_dir:
            Path(self.output_dir).mkdir(parents=True, exist_ok=True)
            path = Path(self.output_dir) / "executed_config.json"
            path.write_text(
                json.dumps(
                    {"config_files": self.config_files, "hyperparameters": self.hyperparameters}, indent=2, default=str
                )
            )
            self.client.log_artifact(run_id, str(path), "config")
        for cfg in [*self.config_files, self.resolved_config]:
            if cfg and os.path.isfile(cfg):
                self.client.log_artifact(run_id, cfg, "config")
        if self.data_table and os.path.isfile(self.data_table):
            log_dataset(self.client, run_id, self.data_table)

    def _log_artifacts(self, artifacts: Sequence[Any]) -> None:
        for path in artifacts:
            if path and os.path.isfile(path):
                self.client.log_artifact(self.cur_run.info.run_id, str(path))

    def complete(self) -> None:
        if self.cur_run:
            self._log_artifacts(self.artifacts)

    def _finish(self, engine: Engine) -> None:
        """The stage is done: its final metrics go onto the parent run (and into the experiment's saved
        view), then the stage run (and, after the last stage, the parent) ends FINISHED."""
        info = json.loads((self.stage_dir / RUN_RECORD).read_text())
        digits = "".join(c for c in str(self.tags.get("stage", self.stage_dir.name)) if c.isdigit())
        stage = int(digits or 0)
        try:
            names = log_stage_on_parent(self.client, info["run_id"], info["parent_run_id"], stage)
            shown = [n for n in names if "/" not in n or n == f"stage{stage}/best_metric"]
            update_runs_view(self.client, self.experiment.experiment_id, shown)
        except Exception as err:  # the stage itself finished: a tracking hiccup must not fail it
            logger.warning("could not log stage %d's metrics on its parent MLflow run: %s", stage, err)
        end_stage_run(self.stage_dir, "FINISHED")


class StageValMLFlowHandler(MLFlowHandler):
    """MONAI's ``MLFlowHandler`` for the validator of a stage: logs into the stage's run recorded in
    ``<stage_dir>/run.json`` by :class:`StageMLFlowHandler` (found by id, never by name). Under
    ``torchrun`` only rank 0 logs (the validation metrics are gathered over the ranks)."""

    def __init__(self, stage_dir: str, **kwargs: Any) -> None:
        self.inactive = not is_main_process()  # MLflow is rank 0's alone
        if self.inactive:  # rank > 0 opens no MLflow store
            self.stage_dir, self.cur_run = Path(stage_dir), None
            return
        super().__init__(**kwargs)
        self.stage_dir = Path(stage_dir)

    def attach(self, engine: Engine) -> None:
        if not self.inactive:
            super().attach(engine)

    def start(self, engine: Engine) -> None:
        if not self.cur_run:
            info = json.loads((self.stage_dir / RUN_RECORD).read_text())
            self.cur_run = self.client.get_run(info["run_id"])
        super().start(engine)


def remove_duplicate_mlflow_handlers(*engines: Engine) -> int:
    """Detach plain ``MLFlowHandler`` instances from engines that also carry the bundle's own.

    ``python -m monai.bundle run --tracking mlflow`` appends MONAI's generic handler to the train and
    validation handler lists; with the bundle's handlers already logging the same run, every metric
    would be logged twice (and the loss per iteration mixed with the per-epoch loss). Returns how many
    attachments were removed.
    """
    removed = 0
    for engine in engines:
        if engine is None:
            continue
        owners = {getattr(h, "__self__", None) for entries in engine._event_handlers.values() for h, *_ in entries}
        ours = [o for o in owners if isinstance(o, (StageMLFlowHandler, StageValMLFlowHandler))]
        theirs = [o for o in owners if type(o) is MLFlowHandler]
        if not ours or not theirs:
            continue
        for stage_handler in (o for o in ours if isinstance(o, StageMLFlowHandler)):
            executed = [a for t in theirs for a in (t.artifacts or []) if a and os.path.isfile(str(a))]
            if executed and not stage_handler.resolved_config:  # MONAI's exported config: log it with ours
                stage_handler.resolved_config = str(executed[0])
        for entries in engine._event_handlers.values():
            for entry in list(entries):
                if type(getattr(entry[0], "__self__", None)) is MLFlowHandler:
                    entries.remove(entry)
                    removed += 1
    if removed:
        logger.info("removed %d duplicate MLflowHandler attachments (the bundle logs to MLflow itself)", removed)
    return removed
