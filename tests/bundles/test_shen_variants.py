"""Shen et al.'s other backbone and top through the bundles: a VGG patch network, and the whole-image
network on it with VGG blocks, trained, recorded and rebuilt for inference."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from monai.bundle import ConfigParser

from mammo_monai.inference.bundle import build_inference_network, config_files
from mammo_monai.networks import IMAGENET_GREY, VGGBlock, patch_vgg
from mammo_monai.networks.weights import load_weights
from mammo_monai.training.workflow import train_bundle
from tests.conftest import BUNDLES, TINY, use_mlflow_store


@pytest.fixture(scope="module")
def trained_vgg(tmp_path_factory, shen_workspace):
    """Both bundles trained with VGG on the shared workspace's manifest and patches (conftest.py), in
    bundle copies and an MLflow store of their own (the workspace's bundles train the ResNet recipe)."""
    base = tmp_path_factory.mktemp("shen_variants")
    for name in ("patch_classifier", "whole_image_classifier"):
        shutil.copytree(BUNDLES / name, base / name)
    mp = pytest.MonkeyPatch()
    use_mlflow_store(mp, base / "mlruns")
    (base / "mlruns").mkdir()
    weights = base / "vgg_tiny_imagenet_like.pth"  # "ImageNet" weights given as a local file, as offline users do
    torch.save(patch_vgg("vgg-tiny", num_classes=1000, in_channels=3).state_dict(), weights)
    # one stage of the recipe's stage-2 kind: ResNet names, mapped to VGG's last block and classifier
    stage = {"trainable": ["layer4", "fc"], "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 1}
    try:
        train_bundle(
            base / "patch_classifier",
            ["demo.yaml"],
            {
                **TINY,
                "dataset_dir": str(shen_workspace / "patches"),
                "arch": "vgg-tiny",
                "pretrained_weights": str(weights),
                "stages": {"1": stage},
            },
        )
        train_bundle(
            base / "whole_image_classifier",
            ["demo.yaml"],
            {
                **TINY,
                "batch_size": 4,
                "dataset_dir": str(shen_workspace / "manifest"),
                "image_size": [128, 100],
                "patch_checkpoint": str(base / "patch_classifier" / "models" / "model.pt"),
                "arch": "vgg-tiny",
                "top": "vgg",
                "top_blocks": [1, 1],
                "stages": {"1": {**stage, "trainable": ["top", "fc"]}},
            },
        )
        yield base
    finally:
        mp.undo()


def test_vgg_patch_network_and_its_whole_image_top_are_recorded_and_rebuilt(trained_vgg, tmp_path):
    patch_meta = json.loads((trained_vgg / "patch_classifier" / "models" / "model_meta.json").read_text())
    assert patch_meta["arch"] == "vgg-tiny" and patch_meta["input_norm"] == list(IMAGENET_GREY)
    patch = build_inference_network(trained_vgg / "patch_classifier")  # strict load of the trained weights
    assert type(patch.features[0]).__name__ == "NormalizedConv2d"
    meta = json.loads((trained_vgg / "whole_image_classifier" / "models" / "model_meta.json").read_text())
    assert (meta["arch"], meta["top"], meta["top_blocks"]) == ("vgg-tiny", "vgg", [1, 1])
    net = build_inference_network(trained_vgg / "whole_image_classifier")  # strict: the recorded top is rebuilt
    assert net.top_kind == "vgg" and all(isinstance(b, VGGBlock) for b in net.top)
    assert type(net.backbone.features[0]).__name__ == "NormalizedConv2d"  # the patch network's normalisation
    with torch.no_grad():
        assert net(torch.rand(1, 1, 128, 100)).shape == (1, 2)
    bundle = trained_vgg / "whole_image_classifier"
    # evaluate.yaml over train.yaml (python -m monai.bundle run ... evaluate) reads the record too
    parser = ConfigParser()
    parser.read_config(config_files(bundle, "evaluate"))
    parser["bundle_root"] = str(bundle)
    assert load_weights(parser.get_parsed_content("network_def"), bundle / "models" / "model.pt") > 0
    forgot = tmp_path / "whole_image_classifier"  # a record without the top's kind builds today's default top
    shutil.copytree(trained_vgg / "whole_image_classifier" / "configs", forgot / "configs")
    (forgot / "models").mkdir()
    shutil.copy(trained_vgg / "whole_image_classifier" / "models" / "model.pt", forgot / "models" / "model.pt")
    (forgot / "models" / "model_meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "top"}))
    with pytest.raises(ValueError, match="trained model does not match WholeImageClassifier"):
        build_inference_network(forgot)
