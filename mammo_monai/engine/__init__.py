"""Staged training on MONAI/Ignite: freezing, data checks, metrics, MLflow tracking, export."""

from mammo_monai.engine.data import make_sampler, records
from mammo_monai.engine.inference import PredictionWriter, find_inputs, trained_setting
from mammo_monai.engine.handlers import PublishBest, ValidationPlots
from mammo_monai.engine.model_registry import LogTrainedModel
from mammo_monai.engine.progress import StageProgress
from mammo_monai.engine.predict import model_preprocessing
from mammo_monai.engine.mlflow_handlers import StageMLFlowHandler, StageValMLFlowHandler, remove_duplicate_mlflow_handlers
from mammo_monai.engine.resume import SaveBest, StageCheckpoint, StageRunner, previous_stage_checkpoint, training_id
from mammo_monai.engine.metrics import pred_label, prob_label
from mammo_monai.engine.staging import apply_stage, load_weights, prepare_network, trainable_parameters
from mammo_monai.engine.tracking import code_version, compare_runs, default_tracking_uri

__all__ = [
    "PredictionWriter",
    "LogTrainedModel",
    "PublishBest",
    "SaveBest",
    "StageCheckpoint",
    "StageMLFlowHandler",
    "StageProgress",
    "StageRunner",
    "StageValMLFlowHandler",
    "ValidationPlots",
    "apply_stage",
    "code_version",
    "compare_runs",
    "default_tracking_uri",
    "find_inputs",
    "load_weights",
    "make_sampler",
    "model_preprocessing",
    "pred_label",
    "prepare_network",
    "previous_stage_checkpoint",
    "prob_label",
    "records",
    "remove_duplicate_mlflow_handlers",
    "trainable_parameters",
    "trained_setting",
    "training_id",
]
