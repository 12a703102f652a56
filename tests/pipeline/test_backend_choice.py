"""``predict``'s backend: the ONNX file exported once (the bundle's ``model.onnx`` or a cached export), and
"auto" chosen per bundle on its validation images (issue 19, item 9)."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mammo_monai.inference import backend_choice, onnx_runtime
from mammo_monai.inference.backend_choice import measure_variants, runtime_network
from mammo_monai.inference.export import export_bundle
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.inference.predict import predict
from tests.pipeline.test_onnx_inference import SIZE, bundle, tiny_network  # noqa: F401 - bundle is a fixture


@pytest.fixture
def count_exports(monkeypatch):
    """How many times torch's ONNX exporter ran, whoever called it."""
    calls = []
    real = torch.onnx.export

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counted)
    return calls


def test_predict_exports_onnx_once_per_bundle_folder_not_per_call(bundle, tmp_path, count_exports):  # noqa: F811
    pytest.importorskip("onnxruntime")
    own = shutil.copytree(bundle, tmp_path / "bundle")
    for i in range(2):
        predict(own, bundle.parent / "images", tmp_path / f"p{i}.csv", progress=False, backend="onnxruntime")
    assert len(count_exports) == 1
    assert len(list((own / "cache" / "onnx").glob("*.onnx"))) == 1  # named by the weights' hash, in the bundle


def test_predict_runs_an_exported_bundles_model_onnx_without_exporting(bundle, tmp_path, count_exports):  # noqa: F811
    pytest.importorskip("onnxruntime")
    target = export_bundle(bundle, tmp_path / "dist")
    count_exports.clear()
    table = predict(target, bundle.parent / "images", tmp_path / "p.csv", progress=False, backend="onnxruntime")
    assert not count_exports and (table["status"] == "ok").all()


def test_an_exported_model_onnx_is_not_used_once_model_pt_holds_other_weights(bundle, tmp_path, count_exports):  # noqa: F811
    import zipfile

    pytest.importorskip("onnxruntime")
    with zipfile.ZipFile(export_bundle(bundle, tmp_path / "dist")) as zf:
        zf.extractall(tmp_path / "unpacked")
    own = next((tmp_path / "unpacked").iterdir())
    weights = torch.load(own / "models" / "model.pt", weights_only=True)
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()}, own / "models" / "model.pt")
    count_exports.clear()
    predict(own, bundle.parent / "images", tmp_path / "p.csv", progress=False, backend="onnxruntime")
    assert len(count_exports) == 1  # exported anew from the weights in model.pt, not the stale model.onnx


class _Shifted(torch.nn.Module):
    """The network with class 1's logit raised: the ranking (so the AUC) is unchanged, decisions are not."""

    def __init__(self, net: torch.nn.Module, shift: float) -> None:
        super().__init__()
        self.net, self.shift = net, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).clone()
        out[:, 1] += self.shift
        return out


def test_a_backend_whose_decisions_flip_too_often_is_rejected_though_its_auc_is_equal(monkeypatch):
    monkeypatch.setattr(backend_choice, "unavailable", lambda name: None)
    net = tiny_network()
    with torch.no_grad():
        net.fc.weight.div_(50.0)  # moderate logits: no probability rounds to 0 or 1, so no ties
    torch.manual_seed(0)
    batches = [torch.rand(4, 1, *SIZE) for _ in range(3)]
    with torch.no_grad():
        gap = torch.cat([net(x)[:, 1] - net(x)[:, 0] for x in batches]).numpy()
    ref = 1 / (1 + np.exp(-gap))
    labels = (ref > np.median(ref)).astype(int)
    labels[[0, 1]] = 1 - labels[[0, 1]]  # not a perfect ranking
    below = np.sort(gap[gap < np.median(gap)])[-1]
    shift = float(np.median(gap) - below) * 1.5  # the image just under the threshold crosses it
    nets = {"eager-fp32": net, "onnxruntime-fp32": net, "openvino-fp32": _Shifted(net, shift)}
    record = measure_variants(nets.__getitem__, batches, labels, [float(np.median(ref))], variants=list(nets))
    bad = record["measured"]["openvino-fp32"]
    assert bad["auc_difference"] <= 1e-4 and bad["flip_rate"] > 0.005 and not bad["accepted"]
    assert record["measured"]["onnxruntime-fp32"]["accepted"]
    assert record["choice"] in ("eager-fp32", "onnxruntime-fp32")  # however fast the rejected one ran


def _manifest(root, n: int = 8):
    """A prepared-manifest folder with ``n`` cached 16-bit validation PNGs of both labels."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        img = np.zeros(SIZE, np.uint16)
        img[8:56, : 20 + 3 * i] = rng.integers(10000, 60000, size=(48, 20 + 3 * i))
        path = root / "images" / f"v{i}.png"
        Image.fromarray(img).save(path)
        rows.append({"image": str(path), "label": i % 2, "split": "val", "patient_id": f"p{i}"})
    pd.DataFrame(rows).to_csv(root / "images.csv", index=False)
    return root


def test_export_records_the_backend_choice_and_predict_auto_runs_it(bundle, tmp_path, caplog):  # noqa: F811
    pytest.importorskip("onnxruntime")
    target = export_bundle(bundle, tmp_path / "dist", validation_manifest=_manifest(tmp_path / "m"))
    import zipfile

    with zipfile.ZipFile(target) as zf:
        record = json.loads(zf.read(f"{bundle.name}/configs/metadata.json"))[backend_choice.RECORD_KEY]
    measured = record["measured"]
    assert record["images"] == 8 and measured["eager-fp32"]["auc_difference"] == 0
    assert measured["onnxruntime-fp32"]["accepted"] and measured["onnxruntime-fp32"]["images_per_second"] > 0
    assert record["choice"] in [n for n, m in measured.items() if m.get("accepted")]

    own = shutil.copytree(bundle, tmp_path / "chosen")
    meta = json.loads((own / "configs" / "metadata.json").read_text())
    meta[backend_choice.RECORD_KEY] = {**record, "choice": "onnxruntime-fp32"}
    (own / "configs" / "metadata.json").write_text(json.dumps(meta))
    net, example = tiny_network(), torch.rand(1, 1, *SIZE)
    opened = open_bundle(own, tmp_path)  # runtime_network reads the opened bundle's metadata
    assert isinstance(runtime_network(net, "auto", example, opened, tmp_path), onnx_runtime.OnnxNetwork)
    with caplog.at_level(logging.INFO, logger=backend_choice.__name__):
        runtime_network(net, "auto", example, open_bundle(bundle, tmp_path), tmp_path)  # nothing recorded: default rule
    assert any("records no backend choice" in r.getMessage() for r in caplog.records)
