"""MLflow: where runs go, one parent run per training with its stages nested, Ignite handlers that log
them, evaluation runs, ``compare``, and the MLflow UI link that shows the runs with their metrics."""

from mammo_monai.tracking.compare import compare_runs
from mammo_monai.tracking.handlers import StageMLFlowHandler, StageValMLFlowHandler, remove_duplicate_mlflow_handlers
from mammo_monai.tracking.runs import code_version, default_tracking_uri, end_stage_run
from mammo_monai.tracking.ui import runs_page_url

__all__ = [
    "StageMLFlowHandler",
    "StageValMLFlowHandler",
    "code_version",
    "compare_runs",
    "default_tracking_uri",
    "end_stage_run",
    "remove_duplicate_mlflow_handlers",
    "runs_page_url",
]
