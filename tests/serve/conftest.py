"""What the serve tests share: a tiny whole-image bundle (random weights, as in the predict tests), the same
with a calibration and its operating points, a tiny patch bundle that draws heatmaps, and test images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mammo_monai.evaluation.calibration import Calibration
from mammo_monai.evaluation.operating_points import OperatingPoint
from mammo_monai.networks import WholeImageClassifier, patch_network
from mammo_monai.synthetic import write_dicom
from tests.conftest import BUNDLES, make_breast

SIZE = (64, 48)
PATCH = 16
#: identifiers that must never reach a response or a log
PATIENT_ID, STUDY_UID = "PID-CHARLIE-9917", "1.2.826.0.1.3680043.8.498.7777"


def _whole(root: Path) -> Path:
    shutil.copytree(BUNDLES / "whole_image_classifier", root, ignore=shutil.ignore_patterns("models", "eval"))
    (root / "models").mkdir()
    torch.manual_seed(0)
    net = WholeImageClassifier(arch="resnet18-narrow", dropout=0.0)
    with torch.no_grad():
        net.fc.weight.mul_(50.0)  # spread the probabilities so views differ
    torch.save(net.state_dict(), root / "models" / "model.pt")
    meta = {"arch": "resnet18-narrow", "image_size": list(SIZE), "num_classes": 2}
    (root / "models" / "model_meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="session")
def whole_bundle(tmp_path_factory) -> Path:
    """A whole-image bundle at 64 x 48 with random weights and no calibration."""
    return _whole(tmp_path_factory.mktemp("serve") / "whole_image_classifier")


@pytest.fixture(scope="session")
def calibrated_bundle(tmp_path_factory) -> Path:
    """The same bundle with a temperature calibration and two operating points (``models/calibration.json``)."""
    root = _whole(tmp_path_factory.mktemp("serve_cal") / "whole_image_classifier")
    points = {
        "balanced": OperatingPoint("balanced", 0.5, 0.8, 0.7, 0.3, "Youden"),
        "high_sensitivity": OperatingPoint("high_sensitivity", 0.2, 0.9, 0.5, 0.5, "sensitivity >= 0.90"),
    }
    calibration = Calibration("temperature", {"temperature": 2.0}, n=40, positives=20, operating_points=points)
    (root / "models" / "calibration.json").write_text(json.dumps(calibration.to_record()))
    return root


@pytest.fixture(scope="session")
def patch_bundle(tmp_path_factory) -> Path:
    """A five-class patch classifier on 16 px patches with random weights: it draws the heatmaps."""
    root = tmp_path_factory.mktemp("serve_patch") / "patch_classifier"
    shutil.copytree(BUNDLES / "patch_classifier", root, ignore=shutil.ignore_patterns("models", "eval"))
    (root / "models").mkdir()
    torch.manual_seed(1)
    torch.save(patch_network("resnet18-narrow", 5).state_dict(), root / "models" / "model.pt")
    meta = {"arch": "resnet18-narrow", "image_size": [PATCH, PATCH], "num_classes": 5}
    (root / "models" / "model_meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="session")
def exam_dicoms(tmp_path_factory) -> list[Path]:
    """Four synthetic DICOM views of one exam (L/R x CC/MLO) carrying a patient ID and a study UID."""
    folder = tmp_path_factory.mktemp("exam")
    paths = []
    for n, (side, view) in enumerate((("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))):
        pixels, *_ = make_breast((160, 120), side, seed=n, with_lesion=n == 0)
        paths.append(folder / f"{PATIENT_ID}_{side}{view}.dcm")  # a name that carries the ID: never logged
        write_dicom(paths[-1], pixels, laterality=side, view=view, patient_id=PATIENT_ID, study_uid=STUDY_UID)
    return paths


@pytest.fixture(scope="session")
def png_view(tmp_path_factory) -> Path:
    """One PNG mammogram (left breast)."""
    path = tmp_path_factory.mktemp("png") / "view.png"
    pixels, *_ = make_breast((160, 120), "L", seed=5, with_lesion=False)
    Image.fromarray((pixels >> 8).astype(np.uint8)).save(path)
    return path
