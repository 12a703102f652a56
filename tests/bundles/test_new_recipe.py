"""A sixth recipe is a config folder: a DenseNet121 patch classifier (MONAI's ``DenseNet121``) written as
nothing but ``configs/train.yaml`` (+ metadata and a minimal ``inference.yaml`` for the published model),
with the shared files copied by ``bundles sync``'s function, trained one epoch by ``train_bundle``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from monai.bundle import ConfigWorkflow
from monai.networks.nets import DenseNet121

from mammo_monai.bundle_names import stale_skeleton_copies, sync_skeleton
from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.inference.bundle import config_files
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.workflow import train_bundle
from tests.conftest import BUNDLES, use_mlflow_store

#: the whole recipe: what a new bundle's train.yaml holds (configs/common_train.yaml does the rest)
DENSENET_TRAIN = """\
# DenseNet121 patch classifier: MONAI's DenseNet121 on one grey channel, from scratch, 5 classes, one stage.
bundle_name: densenet_patch_classifier
dataset_dir: patches
data_table: $@dataset_dir + '/patches.csv'
image_key: path

stages:
  '1': {trainable: all, learning_rate: 1.0e-3, weight_decay: 1.0e-4, epochs: 10}
batch_size: 32
arch: densenet121
num_classes: 5
class_names: [background, calc_malignant, calc_benign, mass_malignant, mass_benign]
image_size: "$[(mammo_monai.data.cache_record.read_record(@dataset_dir) or {}).get('patch_size', 224)] * 2"
growth_rate: 32
init_features: 64
block_config: [6, 12, 24, 16]
+hyperparameters: {growth_rate: '@growth_rate', init_features: '@init_features', block_config: '@block_config'}
+published_settings: {growth_rate: '@growth_rate', init_features: '@init_features', block_config: '@block_config'}

network_def:
  _target_: DenseNet121
  spatial_dims: 2
  in_channels: 1
  out_channels: '@num_classes'
  growth_rate: '@growth_rate'
  init_features: '@init_features'
  block_config: '@block_config'
loss:
  _target_: torch.nn.CrossEntropyLoss
optimizer:
  _target_: torch.optim.Adam
  params: $mammo_monai.training.trainable_parameters(@network)
  lr: '@learning_rate'
  weight_decay: '@weight_decay'

validate#key_metric:
  val_auc:
    _target_: mammo_monai.evaluation.metrics.PresentClassROCAUC
    class_names: '@class_names'
    output_transform: $mammo_monai.evaluation.prob_label
validate#additional_metrics:
  val_acc:
    _target_: ignite.metrics.Accuracy
    output_transform: $mammo_monai.evaluation.pred_label
"""

#: inference over configs/common_inference.yaml: the trained DenseNet rebuilt from the settings published with
#: it, on cached 16-bit patches (load and scale only)
DENSENET_INFERENCE = """\
+imports: ['$from monai.networks.nets import DenseNet121']
class_names: "$@trained['class_names']"
network_def:
  _target_: DenseNet121
  spatial_dims: 2
  in_channels: 1
  out_channels: "$@trained['num_classes']"
  growth_rate: "$@trained['growth_rate']"
  init_features: "$@trained['init_features']"
  block_config: "$@trained['block_config']"
preprocessing:
  _target_: mammo_monai.transforms.eval_transforms
  from_cache: true
"""


def non_blank_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    base = tmp_path_factory.mktemp("new_recipe")
    make_cbis_tree(base / "raw", patients=12, seed=5, size=(96, 72), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(96, 72), workers=1, progress=False)
    make_patches(base / "manifest", base / "patches", size=32, per_roi=2, background=2, workers=1, progress=False)
    return base / "patches"


def test_a_densenet_recipe_is_one_config_folder_and_trains(patches, tmp_path, monkeypatch):
    use_mlflow_store(monkeypatch, tmp_path)
    bundle = tmp_path / "densenet_patch_classifier"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "train.yaml").write_text(DENSENET_TRAIN)
    (bundle / "configs" / "inference.yaml").write_text(DENSENET_INFERENCE)
    meta = json.loads((BUNDLES / "patch_classifier" / "configs" / "metadata.json").read_text())
    (bundle / "configs" / "metadata.json").write_text(json.dumps({**meta, "name": "densenet_patch_classifier"}))
    assert {p.name for p in sync_skeleton(bundle)} >= {"common_train.yaml", "logging.conf"}
    assert stale_skeleton_copies(bundle) == []
    assert non_blank_lines(DENSENET_TRAIN) <= 80

    tiny = {
        "growth_rate": 4,
        "init_features": 8,
        "block_config": [2, 2],
        "batch_size": 8,
        "num_workers": 0,
        "dataset_dir": str(patches),
    }
    tiny["stages"] = {"1": {"trainable": "all", "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 1}}
    (result,) = train_bundle(bundle, [], tiny)
    assert result["stage"] == 1
    published = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)  # a plain state_dict
    settings = json.loads((bundle / "models" / "model_meta.json").read_text())
    assert settings["arch"] == "densenet121" and settings["block_config"] == [2, 2]
    net = DenseNet121(
        spatial_dims=2,
        in_channels=1,
        out_channels=settings["num_classes"],
        **{k: settings[k] for k in ("growth_rate", "init_features", "block_config")},
    )
    net.load_state_dict(published)  # strict: the published weights are this DenseNet's

    inputs = tmp_path / "inputs"  # MONAI alone runs its inference config on a few of the patches
    inputs.mkdir()
    for f in sorted(pd.read_csv(patches / "patches.csv")["path"])[:5]:
        shutil.copy(Path(f) if Path(f).is_absolute() else patches / f, inputs)
    wf = ConfigWorkflow(
        config_file=config_files(bundle),
        workflow_type="infer",
        bundle_root=str(bundle),
        input_dir=str(inputs),
        output_dir=str(tmp_path / "out"),
    )
    wf.initialize()
    wf.run()
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert len(table) == 5 and table[[f"prob_{c}" for c in settings["class_names"]]].sum(axis=1).round(5).eq(1.0).all()
    shutil.rmtree(bundle / "models")
