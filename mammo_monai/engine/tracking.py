"""MLflow conventions: where runs go, how a training's stages are grouped, what is logged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

import mammo_monai


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
        return (Path(tracking_uri[len("sqlite:///"):]).parent / "artifacts" / experiment).as_uri()
    return None


def training_id() -> str:
    """One id shared by the stages of a training (``MAMMO_TRAINING_ID``, set by ``mammo-monai train``),
    else a fresh one: every stage gets its own MLflow run, never a crashed run re-used."""
    return os.environ.get("MAMMO_TRAINING_ID") or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def code_version() -> str:
    """The git commit of the source tree when there is one, else the package version."""
    src = Path(mammo_monai.__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(src), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5)
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


def compare_runs(experiment: str | None = None, tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per run: experiment, run, training id, stage, key parameters, best validation metrics."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri or default_tracking_uri())
    exps = [client.get_experiment_by_name(experiment)] if experiment else client.search_experiments()
    rows = []
    for exp in [e for e in exps if e is not None]:
        for run in client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]):
            p, m, t = run.data.params, run.data.metrics, run.data.tags
            best = {}
            for key in ("val_acc", "val_auc"):
                if key in m:
                    best[f"best_{key}"] = round(max(x.value for x in client.get_metric_history(run.info.run_id, key)), 4)
            rows.append({"experiment": exp.name, "run": run.info.run_name, "training": t.get("training_id", ""),
                         "stage": t.get("stage", p.get("stage", "")), "status": run.info.status,
                         "arch": p.get("arch", ""), "lr": p.get("learning_rate", ""), "epochs": p.get("epochs", ""),
                         "batch": p.get("batch_size", ""), **best,
                         "train_loss": round(m["train_loss"], 4) if "train_loss" in m else None})
    return pd.DataFrame(rows)
