"""Inference: open a bundle (folder or zip) into one object with its networks, preprocessing and declared
behaviour, evaluate a manifest split, predict a folder of mammograms with heatmaps, log and export trained models."""

from mammo_monai.inference.bundle import build_inference_network, config_files
from mammo_monai.inference.logged_model import LogTrainedModel
from mammo_monai.inference.opened_bundle import OpenedBundle, model_preprocessing, open_bundle
from mammo_monai.inference.prediction_writer import PredictionWriter
from mammo_monai.inference.trained_calibration import CalibrateOnValidation
from mammo_monai.io.walk import find_inputs

__all__ = [
    "CalibrateOnValidation",
    "LogTrainedModel",
    "OpenedBundle",
    "PredictionWriter",
    "build_inference_network",
    "config_files",
    "find_inputs",
    "model_preprocessing",
    "open_bundle",
]
