"""What a recipe does at inference is declared in its own inference.yaml and executed by generic code:
a tiny bundle made here (no shipped recipe) declares its activation and decision rule, and ``predict``
and ``open_bundle`` follow the declaration, not the network's shape nor what ``model_meta.json`` holds."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mammo_monai.inference.bundle_archive import BundleError
from mammo_monai.inference.opened_bundle import model_preprocessing, open_bundle
from mammo_monai.inference.predict import predict
from mammo_monai.transforms.pipelines import preprocess_transforms

PACKAGE = Path(__file__).resolve().parents[2] / "mammo_monai"
SIZE = [32, 24]
#: a network any config can build: mean intensity -> ``outputs`` logits (weight and bias set per test)
NETWORK = "$torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(1, {outputs}))"


def _bundle(root: Path, declared: str, outputs: int, weight: list[float], bias: list[float], meta=None) -> Path:
    """A bundle folder: the shared common_inference.yaml, and an inference.yaml of ``declared`` lines."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    shutil.copy(PACKAGE / "bundle_skeleton" / "common_inference.yaml", root / "configs")
    network = NETWORK.format(outputs=outputs)
    (root / "configs" / "inference.yaml").write_text(f'{declared}\nnetwork_def: "{network}"\n')
    (root / "configs" / "metadata.json").write_text(json.dumps({"name": "tiny", "version": "0.0.1"}))
    (root / "models" / "model_meta.json").write_text(json.dumps({"image_size": SIZE, **(meta or {})}))
    state = {"2.weight": torch.tensor(weight).view(outputs, 1), "2.bias": torch.tensor(bias)}
    torch.save(state, root / "models" / "model.pt")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Three PNG "mammograms" of different brightness (breasts of one exam: NYU-style names)."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, (side, view) in enumerate((("L", "CC"), ("L", "MLO"), ("R", "CC"))):
        img = np.zeros((80, 60), np.uint8)
        img[10:70, : 20 + 12 * i] = 60 + 60 * i
        paths.append(folder / f"0_{side}-{view}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


def _means(paths: list[Path]) -> np.ndarray:
    load = preprocess_transforms(size=SIZE)
    return np.array([float(load({"image": str(p)})["image"].mean()) for p in paths])


def _image_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["level"] == "image"].set_index(
        table.loc[table["level"] == "image", "file"].map(lambda f: Path(f).name)
    )


def test_a_declared_sigmoid_and_decision_rule_are_what_predict_runs(tmp_path, images):
    declared = "output_activation: sigmoid\ndecision_rule: {aggregation: max, threshold: 0.5}\noutputs: [probability, decision]"
    root = _bundle(tmp_path / "sig", declared, 1, [8.0], [-1.0])
    table = predict(root, [str(p) for p in images], tmp_path / "p.csv", progress=False, backend="eager")
    got = _image_rows(table).loc[[p.name for p in images], "probability"].to_numpy()
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(8 * _means(images) - 1))), atol=2e-3)  # bf16 autocast
    breasts = table[table["level"] == "breast"].set_index("laterality")
    left = _image_rows(table).loc[[images[0].name, images[1].name], "probability"]
    assert breasts.loc["L", "probability"] == pytest.approx(left.max())  # the declared aggregation: max
    assert (breasts["decision"] == (breasts["probability"] >= 0.5).astype(int)).all()


def test_a_declared_softmax_without_a_decision_writes_no_decision_whatever_model_meta_stores(tmp_path, images):
    stored = {"selection": {"aggregation": "max", "threshold": 0.1}}  # recorded, but not declared: not used
    root = _bundle(tmp_path / "soft", "class_names: [benign, malignant]", 2, [-4.0, 4.0], [0.5, -0.5], stored)
    opened = open_bundle(root, tmp_path / "w")
    assert (opened.output_activation, opened.decision_rule.threshold, opened.outputs) == (
        "softmax",
        None,
        ("probability",),
    )
    table = predict(root, [str(p) for p in images], tmp_path / "p.csv", progress=False, backend="eager")
    z = 8 * _means(images) - 1  # logit difference malignant - benign
    got = _image_rows(table).loc[[p.name for p in images], "probability"].to_numpy()
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-z)), atol=2e-3)
    assert "decision" not in table.columns
    breast = table[(table["level"] == "breast") & (table["laterality"] == "L")]["probability"].iloc[0]
    assert breast == pytest.approx(got[:2].mean())  # the default rule: the mean of the views


def test_a_stored_decision_rule_reads_the_selection_recorded_with_the_weights(tmp_path):
    declared = "output_activation: sigmoid\ndecision_rule: stored\noutputs: [probability, decision]"
    stored = {"selection": {"aggregation": "mean", "threshold": 0.37}}
    rule = open_bundle(_bundle(tmp_path / "a", declared, 1, [1.0], [0.0], stored), tmp_path / "w").decision_rule
    assert (rule.aggregation, rule.threshold) == ("mean", 0.37)
    with pytest.raises(BundleError, match="declares decision_rule: stored, but models/model_meta.json stores no"):
        open_bundle(_bundle(tmp_path / "b", declared, 1, [1.0], [0.0]), tmp_path / "w")


@pytest.mark.parametrize(
    "declared,problem",
    [
        ("output_activation: relu", "output_activation 'relu'; expected one of"),
        ("pipeline: detect", "pipeline 'detect'; expected one of"),
        ("outputs: [probability, decision]", "outputs name decision but no decision_rule is declared"),
        ("outputs: [probability, lesion_map]", "outputs name lesion_map, which segment_then_classify writes"),
    ],
)
def test_a_declaration_that_cannot_be_executed_is_one_line_naming_the_bundle(tmp_path, declared, problem):
    root = _bundle(tmp_path / "bad", declared, 1, [1.0], [0.0])
    with pytest.raises(BundleError) as err:
        open_bundle(root, tmp_path / "w")
    assert str(err.value).startswith(f"{root}: ") and problem in str(err.value) and "\n" not in str(err.value)


def test_a_declared_sigmoid_refuses_a_network_of_two_logits(tmp_path, images):
    root = _bundle(tmp_path / "two", "output_activation: sigmoid", 2, [1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="declares a sigmoid output but the network gives 2 logits"):
        predict(root, [str(images[0])], tmp_path / "p.csv", progress=False, backend="eager")


def test_segment_then_classify_needs_its_partner_before_anything_is_scored(tmp_path, images):
    root = _bundle(tmp_path / "seg", "pipeline: segment_then_classify", 1, [1.0], [0.0])
    with pytest.raises(
        ValueError, match=re.escape(f"{root}: declares segment_then_classify: run it with --patch-bundle")
    ):
        predict(root, [str(images[0])], tmp_path / "p.csv", progress=False, backend="eager")
    partner = _bundle(tmp_path / "partner", "pipeline: segment_then_classify", 1, [1.0], [0.0])
    with pytest.raises(ValueError, match="a partner bundle must classify"):
        open_bundle(root, tmp_path / "w", partner=partner)


def test_heatmaps_refuse_a_partner_that_declares_one_sigmoid_logit(tmp_path, images):
    whole = _bundle(tmp_path / "whole", "output_activation: softmax", 2, [1.0, -1.0], [0.0, 0.0])
    partner = _bundle(tmp_path / "patch", "output_activation: sigmoid", 1, [1.0], [0.0])
    with pytest.raises(ValueError, match="declares sigmoid; heatmaps need a partner that declares softmax"):
        predict(
            whole,
            [str(images[0])],
            tmp_path / "p.csv",
            progress=False,
            backend="eager",
            patch_bundle=partner,
            heatmaps=tmp_path / "maps",
        )
    assert not (tmp_path / "maps").exists()


def test_a_model_without_a_recorded_size_is_preprocessed_at_its_declared_size_by_both_paths(tmp_path):
    root = _bundle(tmp_path / "old", "output_activation: softmax", 2, [1.0, -1.0], [0.0, 0.0])
    (root / "models" / "model_meta.json").write_text("{}")  # trained before the size was recorded
    meta = {
        "name": "tiny",
        "version": "0.0.1",
        "network_data_format": {"inputs": {"image": {"spatial_shape": [40, 30]}}},
    }
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    opened = open_bundle(root, tmp_path / "w")
    assert opened.transform_settings()["size"] == model_preprocessing(root)["size"] == [40, 30]
