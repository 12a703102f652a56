"""An exported bundle as others receive it: metadata and model card generated from what training
recorded, ``models/model.pt`` that ``monai.bundle.load`` reads, and one clear line (exit 2) for every
bundle that cannot be opened. One tiny bundle is "trained" (the stage bookkeeping run on fabricated
validation figures) and exported once for the module."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ignite.engine import Engine
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.inference.bundle import config_files
from mammo_monai.inference.bundle_archive import BundleError
from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.networks import WholeImageClassifier
from mammo_monai.networks.weights import load_weights
from mammo_monai.training import PublishBest, SaveBest
from tests.conftest import BUNDLES

SIZE = [64, 48]  # not the recipe's 1152 x 896
MODEL_PT = "whole_image_classifier/models/model.pt"


def _engine(**state) -> Engine:
    engine = Engine(lambda e, b: None)
    for k, v in state.items():
        setattr(engine.state, k, v)
    return engine


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A whole-image bundle whose one stage (of the recipe's two) ran 3 epochs, best val_auc at epoch 2,
    published through the same handlers a training uses, with a cache record naming an absolute root."""
    base = tmp_path_factory.mktemp("exported")
    root = base / "whole_image_classifier"
    shutil.copytree(BUNDLES / "whole_image_classifier", root, ignore=shutil.ignore_patterns("models", "eval"))
    torch.manual_seed(0)
    net = WholeImageClassifier(arch="resnet10-tiny", dropout=0.0).eval()
    stage_dir = root / "models" / "stage1"
    metrics = {"val_auc": 0.7507, "val_acc": 0.625}
    evaluator = _engine(epoch=2, best_metric=0.7507, best_metric_epoch=2, key_metric_name="val_auc", metrics=metrics)
    SaveBest(str(stage_dir), net)(evaluator)
    record = {"size": SIZE, "keep_aspect": False, "dataset": "synthetic", "root": str(base / "raw" / "data")}
    settings = {"arch": "resnet10-tiny", "num_classes": 2, "image_size": SIZE, "stage": 1, "training_id": "t1"}
    publish = PublishBest(
        str(stage_dir / "model.pt"), str(root / "models" / "model.pt"), settings | {"preprocessing": record}
    )
    publish(_engine(epoch=3))
    return root


@pytest.fixture(scope="module")
def exported(trained) -> Path:
    return export_bundle(trained, trained.parent / "dist")


@pytest.fixture(scope="module")
def unzipped(exported) -> Path:
    out = exported.parent / "unzipped"
    with zipfile.ZipFile(exported) as zf:
        zf.extractall(out)
    return out / "whole_image_classifier"


def test_exported_metadata_and_card_state_what_training_recorded(unzipped):
    meta = json.loads((unzipped / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == SIZE
    assert "trained at 64 x 48 pixels (height x width) in 1 stage (stage 1: 3 epochs)" in meta["description"]
    assert "best validation val_auc 0.7507 (stage 1, epoch 2)" in meta["description"]
    assert "1152x896" not in meta["description"] and "two stages" not in meta["description"]
    assert meta["eval_metrics"] == {"val_auc": 0.7507, "val_acc": 0.625}
    card = (unzipped / "docs" / "README.md").read_text()
    this_model = card.split("## This model", 1)[1].split("\n## ", 1)[0]
    assert "64 x 48 pixels" in this_model and "1 stage (stage 1: 3 epochs)" in this_model
    assert "val_auc 0.7507" in this_model


def test_no_absolute_dataset_root_travels_with_the_model(trained, unzipped):
    assert "root" not in json.loads((trained / "models" / "model_meta.json").read_text())["preprocessing"]
    for f in ("models/model_meta.json", "configs/metadata.json"):
        text = (unzipped / f).read_text()
        assert str(trained.parent) not in text and '"root"' not in text, f


def test_monai_bundle_load_fills_the_network_with_the_exported_weights(unzipped):
    from monai.bundle import ConfigParser, load

    parser = ConfigParser()
    parser.read_config(config_files(unzipped))  # the merged list, common file first
    parser["bundle_root"] = str(unzipped)
    net = parser.get_parsed_content("network_def")
    net = load("whole_image_classifier", model=net, bundle_dir=str(unzipped.parent), source="github", device="cpu")
    x = torch.rand(2, 1, *SIZE)
    ts = torch.jit.load(str(unzipped / "models" / "model.ts"), map_location="cpu")
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), ts(x), atol=1e-5)


def test_load_weights_reads_plain_state_dicts_and_training_checkpoints(trained, unzipped):
    for path in (unzipped / "models" / "model.pt", trained / "models" / "model.pt"):
        assert load_weights(WholeImageClassifier(arch="resnet10-tiny", dropout=0.0), path) > 100


def _rezip(src: Path, dst: Path, edit) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _flip_a_byte_of_model_pt(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(MODEL_PT)
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def _pickle_of(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _replace(name: str, old: bytes, new: bytes):
    return lambda n, data: data.replace(old, new) if n.endswith(name) else data


CASES = {
    "truncated": (lambda z, d: (d.write_bytes(z.read_bytes()[: z.stat().st_size // 2]), d)[1], "truncated"),
    "empty": (lambda z, d: (d.write_bytes(b""), d)[1], "empty file"),
    "not_a_zip": (lambda z, d: (d.write_text("not a zip"), d)[1], "not a readable zip"),
    "flipped_byte_in_model_pt": (_flip_a_byte_of_model_pt, "damaged"),
    "missing_module": (
        lambda z, d: _rezip(z, d, _replace("inference.yaml", b"networks.WholeImageClassifier", b"networks.NoSuchNet")),
        "NoSuchNet",
    ),
    "no_model_pt": (lambda z, d: _rezip(z, d, lambda n, data: None if n == MODEL_PT else data), "no models/model.pt"),
    "bad_expression": (
        lambda z, d: _rezip(z, d, _replace("inference.yaml", b"top: '@top'", b"top: $'resnet' +")),
        "'resnet' +",
    ),
    "zip_bomb_model_pt": (
        lambda z, d: _rezip(z, d, lambda n, data: bytes(20 << 20) if n == MODEL_PT else data),
        "over 100:1",
    ),
    "pickle_with_code": (
        lambda z, d: _rezip(z, d, lambda n, data: _pickle_of(argparse.Namespace(a=1)) if n == MODEL_PT else data),
        "refused by torch.load(weights_only=True)",
    ),
    "legacy_garbage_model_pt": (
        lambda z, d: _rezip(z, d, lambda n, data: bytes(3000) if n == MODEL_PT else data),
        "refused by torch.load(weights_only=True)",
    ),
}


@pytest.fixture(scope="module")
def inputs(exported) -> dict[str, Path]:
    """One PNG to predict and a two-image manifest to evaluate."""
    base = exported.parent / "inputs"
    base.mkdir()
    rows = []
    for i in range(2):
        img = np.zeros((80, 60), np.uint16)
        img[10:70, : 30 + 5 * i] = 30000
        Image.fromarray(img).save(base / f"img{i}.png")
        rows.append({"image": str(base / f"img{i}.png"), "patient_id": f"p{i}", "laterality": "L", "view": "CC"})
    pd.DataFrame(rows).assign(label=[0, 1], dataset="synthetic", split="test", image_id=["a", "b"]).to_csv(
        base / "images.csv", index=False
    )
    return {"png": base / "img0.png", "manifest": base}


def _run(command: str, bundle: Path, inputs: dict[str, Path], out: Path) -> list[str]:
    args = {
        "predict": ["--input", str(inputs["png"]), "--out", str(out / "p.csv"), "--quiet", "--backend", "eager"],
        "evaluate": ["--manifest", str(inputs["manifest"]), "--out", str(out / "e"), "--no-tracking"],
    }[command]
    return [command, "--bundle", str(bundle), *args]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bundle_that_cannot_be_opened_is_one_line_naming_it_and_exit_2(
    case, command, exported, inputs, tmp_path, capsys
):
    make, expected = CASES[case]
    bad = make(exported, tmp_path / f"{case}.zip")
    assert main(_run(command, bad, inputs, tmp_path)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"mammo-monai {command}: error: {bad}: ") and expected in lines[0], lines[0]
    assert tempfile.gettempdir() not in lines[0].replace(str(bad), ""), lines[0]  # no unpacked temporary path
    assert "weights_only=False" not in lines[0] and "Traceback" not in lines[0]


def test_the_exported_bundle_itself_predicts(exported, inputs, tmp_path, capsys):
    assert main(_run("predict", exported, inputs, tmp_path)) == 0
    probabilities = pd.read_csv(tmp_path / "p.csv")["probability"]
    assert len(probabilities) and probabilities.between(0, 1).all()  # every image, breast and exam row


def test_a_zip_over_the_size_limit_is_refused_before_anything_is_unpacked(exported, tmp_path, monkeypatch):
    big = _rezip(exported, tmp_path / "big.zip", lambda n, d: d)
    with zipfile.ZipFile(big, "a") as zf:
        zf.writestr("whole_image_classifier/models/extra.bin", np.random.default_rng(0).bytes(3 << 20))
    monkeypatch.setenv("MAMMO_MONAI_MAX_BUNDLE_MB", "4")
    with pytest.raises(BundleError, match=r"big.zip: the zip unpacks to [\d,]+ bytes, over the 4,194,304-byte limit"):
        open_bundle(big, tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_an_untrained_bundle_folder_says_train_it_first(trained, tmp_path):
    folder = tmp_path / "untrained"
    shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("models"))
    with pytest.raises(BundleError, match="no models/model.pt; train the bundle first"):
        open_bundle(folder, tmp_path / "work")


def test_model_ts_carries_the_merged_inference_config_and_the_zip_holds_both_files(exported, unzipped):
    from monai.data import load_net_with_metadata

    _, _, extra = load_net_with_metadata(str(unzipped / "models" / "model.ts"), more_extra_files=["inference.json"])
    inference = json.loads(extra["inference.json"])
    assert "network_def" in inference and "evaluator" in inference  # the recipe's part and the common part
    assert inference["output_activation"] == "softmax" and inference["pipeline"] == "classify"
    with zipfile.ZipFile(exported) as zf:
        names = set(zf.namelist())
    assert {f"whole_image_classifier/configs/{f}" for f in ("common_inference.yaml", "inference.yaml")} <= names
