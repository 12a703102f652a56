"""MLflow conventions: where runs go, how a training's stages are grouped, what is logged."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mammo_monai
from mammo_monai.tracking.ui import update_runs_view


def default_tracking_uri(project_dir: str | os.PathLike | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<project>/mlruns/mlflow.db`` (the project is
    the working directory). MLflow >= 3.13 refuses the plain ``./mlruns`` file store."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(project_dir or os.getcwd()).resolve() / "mlruns"
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Artifacts of a local sqlite store go to ``mlruns/artifacts/<experiment>`` beside the database."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri[len("sqlite:///") :]).parent / "artifacts" / experiment).as_uri()
    return None


# read by MLflow 3.0-3.16's UI (opens the runs, not the GenAI overview); 3.17 reads the URL (tracking/ui.py)
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
PARENT_KIND = "training"
RUN_RECORD = "run.json"  # in a stage folder: the stage's MLflow run and its parent


def get_experiment_id(client: Any, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created (artifacts beside a sqlite store) when missing; tagged
    for model training and given the saved view of :mod:`mammo_monai.tracking.ui`, so that the MLflow
    UI shows its runs with their metrics, not the GenAI overview."""
    exp = client.get_experiment_by_name(name)
    exp_id = (
        exp.experiment_id
        if exp
        else client.create_experiment(name, artifact_location=artifact_location(tracking_uri, name))
    )
    tags = (exp.tags if exp else {}) or {}
    for key, value in EXPERIMENT_TAGS.items():
        if tags.get(key) != value:
            client.set_experiment_tag(exp_id, key, value)
    update_runs_view(client, exp_id, tags=tags)
    return exp_id


def parent_run(client: Any, experiment_id: str, tid: str, bundle: str) -> str:
    """The run id of training ``tid``'s parent run (found by tag, else created RUNNING)."""
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.training_id = '{tid}' and tags.mammo_kind = '{PARENT_KIND}'"
    )
    if found:
        run = found[0]
        if run.info.status != "RUNNING":
            client.update_run(run.info.run_id, status="RUNNING")
        return run.info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"{bundle}-{tid}",
        tags={"training_id": tid, "mammo_kind": PARENT_KIND, "bundle": bundle},
    )
    return run.info.run_id


def log_stage_on_parent(client: Any, stage_run_id: str, parent_run_id: str, stage: int) -> list[str]:
    """Copy a finished stage's final metrics (its key metric's best among them: ``best_metric``) onto
    its training's parent run: as ``stage<N>/<name>``, and under their own names at step N, so that
    the parent's row in the runs list shows the latest stage's figures in its stages' columns.
    Returns the names logged."""
    from mlflow.entities import Metric

    final = client.get_run(stage_run_id).data.metrics
    now = int(time.time() * 1000)
    logged = {**{f"stage{stage}/{k}": v for k, v in final.items()}, **final}
    client.log_batch(parent_run_id, metrics=[Metric(k, v, now, stage) for k, v in logged.items()])
    return list(logged)


def end_stage_run(stage_dir: str | os.PathLike, status: str, parent_only: bool = False) -> None:
    """End the MLflow runs recorded for a stage (``run.json``: the stage run and its parent) with
    ``status`` (FINISHED, FAILED, KILLED): a failed or interrupted stage never stays RUNNING.
    ``parent_only`` leaves the stage run as it is (a stage that finished in a training that did not)."""
    import json

    import mlflow

    record = Path(stage_dir) / RUN_RECORD
    if not record.is_file():
        return
    info = json.loads(record.read_text())
    client = mlflow.MlflowClient(tracking_uri=info["tracking_uri"])
    stage_run = None if parent_only else info.get("run_id")
    for run_id in (stage_run, info.get("parent_run_id") if status != "FINISHED" or info.get("last_stage") else None):
        if run_id:
            try:
                client.set_terminated(run_id, status=status)
            except Exception as err:  # the store may be gone; the stage's own outcome matters more
                logging.getLogger(__name__).warning("could not mark MLflow run %s %s: %s", run_id, status, err)


def code_version() -> str:
    """The git commit of the source tree when there is one, else the package version."""
    src = Path(mammo_monai.__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0 and out.stdout.strip():
            return f"{mammo_monai.__version__}+{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return mammo_monai.__version__


def data_fingerprint(table: str | os.PathLike) -> dict[str, Any]:
    """SHA-256 (first 16 hex digits) and row count of a data table, for the run's parameters."""
    data = Path(table).read_bytes()
    rows = max(0, data.count(b"\n") - 1)
    return {"data_table": str(table), "data_sha256": hashlib.sha256(data).hexdigest()[:16], "data_rows": rows}


@contextmanager
def fluent_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for a moment, then put back exactly what was there.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, and setting
    the old value back would pin it for the rest of the process: both are restored as they were."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    old_global, old_env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        utils._tracking_uri = old_global
        if old_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_env
