"""``mammo-monai compare``: the runs of one or all experiments side by side (``mlflow.search_runs``)."""

from __future__ import annotations

import pandas as pd

from mammo_monai.tracking.runs import default_tracking_uri, fluent_tracking_uri

#: columns of ``mlflow.search_runs``' table -> compare's (parameters and tags as the bundles log them)
COLUMNS = {
    "experiment": "experiment",
    "tags.mlflow.runName": "run",
    "tags.training_id": "training",
    "stage": "stage",
    "status": "status",
    "params.arch": "arch",
    "params.learning_rate": "lr",
    "params.epochs": "epochs",
    "params.batch_size": "batch",
}
BEST = ("val_acc", "val_auc")  # best over the epochs, from each metric's history


def compare_runs(experiment: str | None = None, tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per run: experiment, run, training id, stage, key parameters, best validation metrics
    and the last training loss, oldest run first."""
    import mlflow

    uri = tracking_uri or default_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    exps = [client.get_experiment_by_name(experiment)] if experiment else client.search_experiments()
    names = {e.experiment_id: e.name for e in exps if e is not None}
    if not names:
        return pd.DataFrame()
    with fluent_tracking_uri(uri):
        runs = mlflow.search_runs(list(names), order_by=["attributes.start_time ASC"], output_format="pandas")
    if runs.empty:
        return pd.DataFrame()
    for col in (*COLUMNS, "tags.stage", "params.stage", "metrics.train_loss"):
        if col not in runs and col not in ("experiment", "stage"):
            runs[col] = None
    runs["experiment"] = runs["experiment_id"].map(names)
    runs["stage"] = runs["tags.stage"].fillna(runs["params.stage"]).fillna("")
    table = runs[list(COLUMNS)].rename(columns=COLUMNS).fillna("")
    for key in BEST:
        if f"metrics.{key}" in runs:
            table[f"best_{key}"] = [
                round(max(m.value for m in client.get_metric_history(run_id, key)), 4) if pd.notna(last) else None
                for run_id, last in zip(runs["run_id"], runs[f"metrics.{key}"])
            ]
    table["train_loss"] = [round(v, 4) if pd.notna(v) else None for v in runs["metrics.train_loss"]]
    return _parents_take_their_stages_best(table).reset_index(drop=True)


def _parents_take_their_stages_best(table: pd.DataFrame) -> pd.DataFrame:
    """A parent run's history holds one value per stage (the stage's last epoch): its ``best_*`` is the
    best of its stages' epochs instead, as a reader of a column named "best" expects."""
    staged = table[(table["stage"] != "") & (table["training"] != "")]
    for key in (k for k in BEST if f"best_{k}" in table):
        best = pd.to_numeric(staged[f"best_{key}"], errors="coerce").groupby(staged["training"]).max()
        parents = (table["stage"] == "") & table["training"].isin(best.index)
        table.loc[parents, f"best_{key}"] = table.loc[parents, "training"].map(best)
    return table
