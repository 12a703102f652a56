"""ONNX export of the whole-image network and the ONNX Runtime / OpenVINO backends of ``predict``."""

from __future__ import annotations

import builtins
import json
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mammo_monai.inference import onnx_runtime
from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.onnx_runtime import OnnxNetwork, check_onnx, export_onnx, inference_backend
from mammo_monai.inference.predict import predict
from mammo_monai.networks import WholeImageClassifier, guard_convolutions
from tests.conftest import BUNDLES

SIZE = (64, 48)


def tiny_network(seed: int = 0) -> WholeImageClassifier:
    torch.manual_seed(seed)
    net = WholeImageClassifier(arch="resnet18-narrow", dropout=0.0)
    with torch.no_grad():
        net.fc.weight.mul_(50.0)  # spread the probabilities away from 0.5, so differences show
    return net.eval()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A whole-image bundle with random "trained" weights at a tiny size, and three PNG mammograms."""
    base = tmp_path_factory.mktemp("onnx")
    root = base / "whole_image_classifier"
    shutil.copytree(BUNDLES / "whole_image_classifier", root, ignore=shutil.ignore_patterns("models"))
    (root / "models").mkdir()
    torch.save(tiny_network().state_dict(), root / "models" / "model.pt")
    meta = {"arch": "resnet18-narrow", "image_size": list(SIZE), "num_classes": 2}
    (root / "models" / "model_meta.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(0)
    (base / "images").mkdir()
    for i in range(3):
        img = np.zeros((160, 120), np.uint8)
        img[20:140, : 60 + 10 * i] = rng.integers(60, 220, size=(120, 60 + 10 * i))
        Image.fromarray(img).save(base / "images" / f"img{i}.png")
    return root


def test_onnx_export_matches_eager_at_batch_1_and_3(tmp_path):
    net = tiny_network()
    guard_convolutions(net)  # as load_networks does: the export traces through GuardedConv2d
    net.to(memory_format=torch.channels_last)
    example = torch.rand(1, 1, *SIZE)
    path = export_onnx(net, example, tmp_path / "model.onnx")
    worst = check_onnx(path, net, [example, torch.rand(3, 1, *SIZE)], atol=1e-4)
    assert worst <= 1e-4 and OnnxNetwork(path)(torch.rand(3, 1, *SIZE)).shape == (3, 2)


def test_check_onnx_raises_when_the_graph_differs_from_the_network(tmp_path):
    net = tiny_network()
    path = export_onnx(net, torch.rand(1, 1, *SIZE), tmp_path / "m.onnx")
    with pytest.raises(RuntimeError, match="differs"):
        check_onnx(path, tiny_network(seed=1), [torch.rand(1, 1, *SIZE)], atol=1e-4)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "auto"])
def test_predict_backends_give_eager_probabilities(bundle, tmp_path, monkeypatch, backend):
    pytest.importorskip(backend if backend != "auto" else onnx_runtime.AUTO_BACKEND)
    # float32 everywhere: the swap of the network call is under test, not bf16's rounding
    monkeypatch.setattr(onnx_runtime, "bf16_supported", lambda: False)
    images = bundle.parent / "images"
    eager = predict(bundle, images, tmp_path / "eager.csv", progress=False, backend="eager", tta=True)
    other = predict(bundle, images, tmp_path / "other.csv", progress=False, backend=backend, tta=True)
    p, q = (t.loc[t["level"] == "image", "probability"].to_numpy() for t in (eager, other))
    assert len(p) == 3 and np.ptp(p) > 1e-3  # the images give different answers
    np.testing.assert_allclose(q, p, atol=1e-3)


def test_auto_falls_back_to_eager_with_one_warning_without_the_runtime(monkeypatch, caplog, tmp_path):
    real_import = builtins.__import__

    def no_runtime(name, *args, **kwargs):
        if name.split(".")[0] in ("onnxruntime", "openvino"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_runtime)
    net = tiny_network()
    with caplog.at_level(logging.WARNING, logger=onnx_runtime.__name__):
        out = inference_backend(net, "auto", torch.rand(1, 1, *SIZE), tmp_path, bf16=False)
    assert out is net
    assert len(caplog.records) == 1 and "not installed" in caplog.records[0].getMessage()
    assert not list(tmp_path.iterdir())  # nothing exported


def test_export_writes_model_onnx_and_records_opset_and_dynamic_axes(bundle, tmp_path):
    pytest.importorskip("onnxruntime")
    target = export_bundle(bundle, tmp_path)
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read(f"{bundle.name}/configs/metadata.json"))
        zf.extract(f"{bundle.name}/models/model.onnx", tmp_path)
    assert f"{bundle.name}/models/model.onnx" in names
    assert len(meta["onnx"].pop("weights_key")) == 20  # the weights it was exported from (backend_choice)
    assert meta["onnx"] == {
        "file": "models/model.onnx",
        "opset": onnx_runtime.ONNX_OPSET,
        "dynamic_axes": {"image": [0], "pred": [0]},
    }
    import onnx

    model = onnx.load(str(tmp_path / bundle.name / "models" / "model.onnx"))
    assert {o.domain: o.version for o in model.opset_import}[""] == onnx_runtime.ONNX_OPSET
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named (dynamic) batch axis
