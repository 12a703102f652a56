"""Two synthetic "sites" for calibration: prepared manifests of cached 16-bit PNGs whose brightness tells
malignant from benign, the second site's films darker (another vendor's intensity profile), and a tiny
bundle whose network is a fixed function of the mean intensity (nothing is trained).

Used by tests/pipeline/test_calibrate_command.py and scripts/bench_calibration.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

PACKAGE = Path(__file__).resolve().parents[2] / "mammo_monai"
#: mean intensity m (0..1) -> logit 20 (m - 0.5): sigmoid, one logit
NETWORK = "$torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(1, 1))"
WEIGHT, BIAS = 20.0, -10.0


def tiny_bundle(root: Path, version: str = "0.1.0") -> Path:
    """A bundle folder whose network scores sigmoid(20 * (mean intensity - 0.5))."""
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    shutil.copy(PACKAGE / "bundle_skeleton" / "common_inference.yaml", root / "configs")
    (root / "configs" / "inference.yaml").write_text(f'output_activation: sigmoid\nnetwork_def: "{NETWORK}"\n')
    metadata = {"name": "tiny", "version": version, "changelog": {version: "first"}}
    metadata["network_data_format"] = {"inputs": {"image": {"spatial_shape": [16, 12]}}, "outputs": {"pred": {}}}
    (root / "configs" / "metadata.json").write_text(json.dumps(metadata))
    (root / "models" / "model_meta.json").write_text(json.dumps({"image_size": [16, 12]}))
    state = {"2.weight": torch.tensor([[WEIGHT]]), "2.bias": torch.tensor([BIAS])}
    torch.save(state, root / "models" / "model.pt")
    return root


def site_manifest(
    root: Path, splits: dict[str, int], scale: float = 1.0, gamma: float = 1.0, seed: int = 0, prevalence: float = 0.3
) -> Path:
    """A prepared manifest (``images.csv`` + PNGs) with ``splits`` (name -> images); each image one
    brightness b (malignant ~ N(0.56, 0.06), benign ~ N(0.46, 0.06)), written as ``scale * b ** gamma``."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows = []
    for split, n in splits.items():
        labels = (rng.random(n) < prevalence).astype(int)
        labels[:2], labels[2:4] = 1, 0  # both classes, however small the split
        bright = np.clip(rng.normal(np.where(labels == 1, 0.56, 0.46), 0.06), 0.01, 0.99)
        for i, (label, b) in enumerate(zip(labels, bright)):
            path = root / f"{split}{i}.png"
            pixels = np.full((16, 12), scale * b**gamma * 65535, np.float64).round().astype(np.uint16)
            Image.fromarray(pixels).save(path)
            rows.append({"image_id": f"{split}{i}", "image": str(path), "patient_id": f"{split}-p{i}"})
            rows[-1].update(laterality="L", view="CC", label=int(label), dataset="folder", split=split)
    pd.DataFrame(rows).to_csv(root / "images.csv", index=False)
    return root
