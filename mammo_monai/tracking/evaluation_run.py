"""One MLflow run per ``evaluate``, in the experiment ``<bundle>-evaluation``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mammo_monai.tracking.runs import default_tracking_uri, get_experiment_id
from mammo_monai.tracking.ui import update_runs_view


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat = {}
    for k, v in d.items():
        key = f"{prefix}{k}".replace(".", "_")
        if isinstance(v, dict):
            flat.update(_flat(v, key + "_"))
        elif isinstance(v, list):
            flat.update({f"{key}_{i}": float(x) for i, x in enumerate(v)})
        elif isinstance(v, (int, float, np.floating)) and not isinstance(v, bool):
            flat[key] = float(v)
    return flat


def log_evaluation(bundle_name: str, metrics: dict[str, Any], out: Path) -> None:
    """One run in ``<bundle_name>-evaluation``: settings, every finite figure of ``metrics``, and the
    files ``evaluate`` wrote into ``out``; the experiment's saved view shows the AUCs."""
    import mlflow

    uri = default_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = get_experiment_id(client, f"{bundle_name}-evaluation", uri)
    run = client.create_run(exp_id, run_name=f"evaluate-{metrics['split']}{'-tta' if metrics['tta'] else ''}")
    client.log_param(run.info.run_id, "tta", metrics["tta"])
    client.log_param(run.info.run_id, "models", metrics["models"])
    client.log_param(run.info.run_id, "thresholds_from", metrics["thresholds_from"] or "none (in-sample only)")
    figures = _flat({k: v for k, v in metrics.items() if isinstance(v, dict)})
    for key, value in figures.items():
        if np.isfinite(value):
            client.log_metric(run.info.run_id, key, value)
    update_runs_view(client, exp_id, [k for k in figures if k.endswith("_auc")])  # the UI's columns
    for f in ("metrics.json", "roc.png", "predictions.csv", "reliability.png"):
        if (out / f).is_file():  # reliability.png: a calibrated bundle's
            client.log_artifact(run.info.run_id, str(out / f))
    client.set_terminated(run.info.run_id)
