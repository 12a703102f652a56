"""The Shen recipe's two bundles trained once on a tiny synthetic CBIS-DDSM, shared by ``test_bundles.py`` and
``test_bundles_outputs.py`` (package scope: one training for both files). Other files here that define their
own ``trained`` fixture use theirs (``test_shen_variants.py`` trains its own bundle copies on this workspace's
manifest and patches)."""

from __future__ import annotations

import shutil

import pytest
import torch

from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.networks import patch_resnet
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.workflow import train_bundle
from tests.conftest import BUNDLES, TINY, use_mlflow_store


@pytest.fixture(scope="package")
def shen_workspace(tmp_path_factory):
    """Raw tree, manifest, patches, copies of both bundles and an MLflow store folder (``mlruns``)."""
    base = tmp_path_factory.mktemp("bundles")
    make_cbis_tree(base / "raw", patients=14, seed=5, size=(128, 100), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(128, 100), workers=1, progress=False)
    make_patches(base / "manifest", base / "patches", size=32, per_roi=3, background=3, workers=1, progress=False)
    for name in ("patch_classifier", "whole_image_classifier"):
        shutil.copytree(BUNDLES / name, base / name)
    (base / "mlruns").mkdir()
    return base


@pytest.fixture(scope="package")
def shen_trained(shen_workspace):
    """Both bundles trained in the workspace, every stage of their recipes, tracked in its MLflow store."""
    workspace = shen_workspace
    mp = pytest.MonkeyPatch()
    use_mlflow_store(mp, workspace / "mlruns")
    try:
        # the paper's three stages, from "ImageNet" weights given as a local file (offline), as a user would
        weights = workspace / "imagenet_like.pth"
        torch.save(patch_resnet("resnet18-narrow", num_classes=1000, in_channels=3).state_dict(), weights)
        three = {
            str(k): {"trainable": t, "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 1}
            for k, t in ((1, ["fc"]), (2, ["layer4", "fc"]), (3, "all"))
        }
        patch = train_bundle(
            workspace / "patch_classifier",
            ["demo.yaml"],
            {**TINY, "dataset_dir": str(workspace / "patches"), "pretrained_weights": str(weights), "stages": three},
        )
        whole = train_bundle(
            workspace / "whole_image_classifier",
            ["demo.yaml"],
            {
                **TINY,
                "batch_size": 4,
                "dataset_dir": str(workspace / "manifest"),
                "image_size": [128, 100],
                "patch_checkpoint": str(workspace / "patch_classifier" / "models" / "model.pt"),
                "stages": {  # the recipe's two stages (the demo overlay has only the first)
                    "1": {"trainable": ["top", "fc"], "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 1},
                    "2": {"trainable": "all", "learning_rate": 1e-4, "weight_decay": 1e-4, "epochs": 1},
                },
            },
        )
    finally:
        mp.undo()
    return patch, whole


@pytest.fixture(scope="module")
def workspace(shen_workspace):
    """:func:`shen_workspace`, with MLflow pointed at its store for the module's tests."""
    mp = pytest.MonkeyPatch()
    use_mlflow_store(mp, shen_workspace / "mlruns")
    yield shen_workspace
    mp.undo()


@pytest.fixture(scope="module")
def trained(workspace, shen_trained):
    """The results of both trainings (per stage), patch classifier first."""
    return shen_trained
