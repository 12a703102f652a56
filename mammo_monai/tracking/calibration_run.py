"""The calibration a training fitted, logged onto the MLflow runs of the stage that fitted it (the stage run
and its training's parent run, both named in the stage's ``run.json``)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mammo_monai.tracking.runs import RUN_RECORD

logger = logging.getLogger(__name__)

#: the prefix of the metrics and the artifact folder
PREFIX = "calibration"


def log_calibration(
    stage_dir: str | os.PathLike, figures: Mapping[str, float], files: Sequence[str | os.PathLike] = ()
) -> list[str]:
    """Log ``figures`` as metrics ``calibration/<name>`` and ``files`` as artifacts under ``calibration/``
    onto the stage's run and its parent run. A stage without ``run.json`` logs nothing; a tracking error is a
    warning (the model and its calibration are written already). Returns the run ids logged to."""
    import mlflow
    from mlflow.entities import Metric

    record = Path(stage_dir) / RUN_RECORD
    if not record.is_file():
        return []
    info = json.loads(record.read_text())
    client = mlflow.MlflowClient(tracking_uri=info["tracking_uri"])
    now = int(time.time() * 1000)
    metrics = [Metric(f"{PREFIX}/{k}", float(v), now, 0) for k, v in figures.items()]
    logged = []
    for run_id in dict.fromkeys(r for r in (info.get("run_id"), info.get("parent_run_id")) if r):
        try:
            client.log_batch(run_id, metrics=metrics)
            for f in files:
                if Path(f).is_file():
                    client.log_artifact(run_id, str(f), PREFIX)
            logged.append(run_id)
        except Exception as err:  # noqa: BLE001 - the calibration is written; a tracking hiccup must not fail it
            logger.warning("could not log the calibration onto MLflow run %s: %s", run_id, err)
    return logged
