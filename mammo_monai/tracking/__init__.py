"""MLflow: where runs go, one parent run per training with its stages nested, Ignite handlers that log
them, evaluation runs, and ``compare``."""

from mammo_monai.tracking.compare import compare_runs
from mammo_monai.tracking.handlers import StageMLFlowHandler, StageValMLFlowHandler, remove_duplicate_mlflow_handlers
from mammo_monai.tracking.runs import code_version, default_tracking_uri, end_stage_run

__all__ = [
    "StageMLFlowHandler",
    "StageValMLFlowHandler",
    "code_version",
    "compare_runs",
    "default_tracking_uri",
    "end_stage_run",
    "remove_duplicate_mlflow_handlers",
]
