"""The MLflow UI's page for a training: its experiment's runs with their metrics (MLflow 3.17).

What the UI of MLflow 3.17 honours (read from its bundled JavaScript, ``mlflow/server/js/build``):

- It shows an experiment as GenAI (overview of traces, runs called "Evaluations") or as model training
  (the runs list) after one global *workflow type*: the URL parameter ``workflowType``
  (``machine_learning`` or ``genai``), else what the browser stored when its user last flipped the side
  bar's "GenAI / Model training" switch, else GenAI. The experiment tag ``mlflow.experimentKind`` is
  no longer read, and no server option or environment variable changes the default.
- Its runs table shows a metric only as a selected column, and none is selected at first. A saved view
  (the runs page's "Views" menu and "Save view"), kept in the experiment tag
  ``mlflow.sharedViewState.<id>`` and opened with the URL parameter ``viewStateShareKey=<id>``,
  selects them.

So each experiment that training or ``evaluate`` logs to carries the saved view "Training runs" (its
runs' metrics, extended as new ones appear), and :func:`runs_page_url` is the link that opens it on the
runs list. ``python -m mammo_monai.tracking.ui_links`` prints the link of every experiment of a store.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

UI_URL = "http://127.0.0.1:5000"  # where ``mlflow ui`` serves by default
RUNS_VIEW = "training-runs"
VIEW_NAME = "Training runs"
VIEW_TAG = f"mlflow.sharedViewState.{RUNS_VIEW}"
MAX_COLUMNS = 24  # the UI refuses a saved view over 20000 characters; a wider table helps no one


def runs_page_url(experiment_id: str, ui_url: str = UI_URL) -> str:
    """The link that opens experiment ``experiment_id`` on its runs list with the saved view."""
    query = urlencode({"workflowType": "machine_learning", "viewStateShareKey": RUNS_VIEW})
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def _rank(column: str) -> tuple[int, int, str]:
    """Column order: the key metric's best (the training's, then each stage's), the validation metrics,
    the others, the epochs."""
    name = column.removeprefix("metrics.`").removesuffix("`")
    stage = re.fullmatch(r"stage(\d+)/best_metric", name)
    if name == "best_metric":
        return 0, 0, name
    if stage:
        return 1, int(stage.group(1)), name
    if name.endswith("_epoch"):
        return 4, 0, name
    return (2 if name.startswith("val_") else 3), 0, name


def _read_view(tag: str | None) -> tuple[list[str], int] | None:
    """The columns a stored view selects and when it was created; None when there is none or it
    cannot be read (it is then written afresh)."""
    try:
        view = json.loads(tag)
        return list(json.loads(view["state"])["selectedColumns"]), int(view["createdAt"])
    except (TypeError, ValueError, KeyError):
        return None


def update_runs_view(
    client: Any, experiment_id: str, metrics: Iterable[str] = (), tags: Mapping[str, str] | None = None
) -> None:
    """Create the experiment's saved view "Training runs", or add the columns of ``metrics`` it lacks.

    Args:
        client: an ``mlflow.MlflowClient``.
        experiment_id: the experiment.
        metrics: metric names to show as columns (ordered by :func:`_rank`).
        tags: the experiment's tags when the caller has them (saves a request).
    """
    if tags is None:
        tags = client.get_experiment(experiment_id).tags or {}
    now = int(time.time() * 1000)
    columns, created = _read_view(tags.get(VIEW_TAG)) or ([], None)
    new = [c for c in dict.fromkeys(f"metrics.`{m}`" for m in metrics) if c not in columns]
    if created is not None and not new[: max(0, MAX_COLUMNS - len(columns))]:
        return
    columns = sorted([*columns, *new], key=_rank)[:MAX_COLUMNS]
    widths = {c: min(150, max(80, 7 * len(c) - 50)) for c in columns}  # the header's name fits
    state = json.dumps({"selectedColumns": columns, "columnOrder": columns, "columnWidths": widths})
    view = {"name": VIEW_NAME, "createdAt": created or now, "updatedAt": now, "state": state}
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(view))
