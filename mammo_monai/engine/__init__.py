"""Staged training on MONAI/Ignite: freezing, data checks, metrics, MLflow tracking, export."""

from mammo_monai.engine.data import make_sampler, records
from mammo_monai.engine.inference import PredictionWriter, find_inputs, trained_setting
from mammo_monai.engine.handlers import PublishBest, StageMLFlowHandler, ValidationPlots
from mammo_monai.engine.metrics import pred_label, prob_label
from mammo_monai.engine.staging import apply_stage, load_weights, prepare_network, trainable_parameters
from mammo_monai.engine.tracking import code_version, compare_runs, default_tracking_uri, training_id

__all__ = [
    "PredictionWriter",
    "PublishBest",
    "StageMLFlowHandler",
    "ValidationPlots",
    "apply_stage",
    "code_version",
    "compare_runs",
    "default_tracking_uri",
    "find_inputs",
    "load_weights",
    "make_sampler",
    "pred_label",
    "prepare_network",
    "prob_label",
    "records",
    "trainable_parameters",
    "trained_setting",
    "training_id",
]
