"""Inference: open a bundle (folder or zip) and rebuild its network and preprocessing, evaluate a
manifest split, predict a folder of mammograms with heatmaps, log and export trained models."""

from mammo_monai.inference.bundle import build_inference_network, load_networks, open_bundle
from mammo_monai.inference.logged_model import LogTrainedModel
from mammo_monai.inference.predict import model_preprocessing
from mammo_monai.inference.prediction_writer import PredictionWriter
from mammo_monai.io.walk import find_inputs

__all__ = [
    "LogTrainedModel",
    "PredictionWriter",
    "build_inference_network",
    "find_inputs",
    "load_networks",
    "model_preprocessing",
    "open_bundle",
]
