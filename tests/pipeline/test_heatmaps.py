"""The patch-classifier heatmap against a hand computation: MONAI's sliding window centred on the
pixel grid, zero padding, the breast mask and the bilinear enlargement of the coarse map; and the same
maps from the fast inference backend (ONNX Runtime) as from eager PyTorch, with eager as the fallback."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mammo_monai.inference import heatmaps as heatmaps_module
from mammo_monai.inference import onnx_runtime
from mammo_monai.inference import predict as predict_module
from mammo_monai.inference.heatmaps import heatmap_network, sliding_window_probabilities
from mammo_monai.inference.onnx_runtime import OnnxNetwork, OpenVinoNetwork, export_onnx
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.inference.predict import predict
from mammo_monai.networks import patch_network
from tests.conftest import BUNDLES
from tests.pipeline.test_onnx_inference import bundle  # noqa: F401 - a fixture: a whole-image bundle, 3 PNGs


class SumOfWindow(torch.nn.Module):
    """A two-class 'classifier': logits [0, sum of the window], so class 1 is sigmoid(sum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.sum(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(total), total], dim=1)


def _hand_coarse(image: np.ndarray, breast: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """Class probabilities at the window centres (0, stride, ...), by loops: a window centred on
    (r, c) covers rows r - patch // 2 .. r - patch // 2 + patch - 1 (zeros outside the image)."""
    h, w = image.shape
    half = patch // 2
    rows, cols = range(0, h, stride), range(0, w, stride)
    out = np.zeros((2, len(rows), len(cols)))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if not breast[r, c]:
                out[:, i, j] = (1.0, 0.0)
                continue
            total = sum(
                image[y, x]
                for y in range(r - half, r - half + patch)
                for x in range(c - half, c - half + patch)
                if 0 <= y < h and 0 <= x < w
            )
            p1 = 1.0 / (1.0 + np.exp(-total))
            out[:, i, j] = (1.0 - p1, p1)
    return out


@pytest.mark.parametrize(("patch", "stride", "batch_size"), [(3, 1, 64), (4, 2, 3), (5, 5, 2)])
def test_heatmap_is_the_hand_computed_window_grid(patch, stride, batch_size):
    rng = np.random.default_rng(patch)
    image = rng.normal(size=(7, 6)).astype(np.float32)
    breast = np.ones((7, 6), bool)
    breast[:, 4:] = False  # the right of the film is background
    got = sliding_window_probabilities(
        SumOfWindow(), torch.from_numpy(image)[None], torch.from_numpy(breast)[None], patch, stride, batch_size
    )
    coarse = torch.from_numpy(_hand_coarse(image, breast, patch, stride)).float()
    expected = F.interpolate(coarse[None], size=image.shape, mode="bilinear", align_corners=False)[0]
    assert got.shape == (2, 7, 6)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    if stride == 1:  # no enlargement: each pixel is its own window's probability
        torch.testing.assert_close(got, coarse, rtol=1e-5, atol=1e-6)


def test_heatmap_refuses_an_empty_breast_and_a_stride_over_the_patch():
    image = torch.rand(1, 6, 6)
    with pytest.raises(ValueError, match="no window centre lies inside the breast"):
        sliding_window_probabilities(SumOfWindow(), image, torch.zeros(1, 6, 6), 3, 1)
    with pytest.raises(ValueError, match="stride 4 must be between 1 and the patch size 3"):
        sliding_window_probabilities(SumOfWindow(), image, None, 3, 4)
    assert sliding_window_probabilities(SumOfWindow(), image, None, 3, 3).shape == (2, 6, 6)


def test_heatmap_stride_defaults_to_a_quarter_of_the_patch():
    image, breast = torch.rand(1, 9, 9), torch.ones(1, 9, 9, dtype=torch.bool)
    quarter = sliding_window_probabilities(SumOfWindow(), image, breast, 8, 2)
    torch.testing.assert_close(sliding_window_probabilities(SumOfWindow(), image, breast, 8), quarter)
    assert not torch.allclose(sliding_window_probabilities(SumOfWindow(), image, breast, 8, 1), quarter)
    one = sliding_window_probabilities(SumOfWindow(), image, breast, 3, 1)  # 3 // 4 is 0: at least 1
    torch.testing.assert_close(sliding_window_probabilities(SumOfWindow(), image, breast, 3, None), one)


def tiny_patch_network(seed: int = 0) -> torch.nn.Module:
    """A five-class ResNet patch classifier at test size, its logits spread so that differences show."""
    torch.manual_seed(seed)
    net = patch_network(arch="resnet10-tiny", num_classes=5)
    with torch.no_grad():
        net.fc.weight.mul_(20.0)
    return net.eval()


def test_heatmap_on_onnxruntime_matches_eager_within_1e_4(tmp_path):
    pytest.importorskip("onnxruntime")
    net = tiny_patch_network()
    path = export_onnx(net, torch.rand(1, 1, 32, 32), tmp_path / "patch.onnx")
    image = torch.rand(1, 80, 60)
    breast = torch.zeros(1, 80, 60, dtype=torch.bool)
    breast[:, 5:75, :40] = True
    # 7 windows a batch: the last batch is short, so the ONNX graph's dynamic batch axis is exercised
    eager = sliding_window_probabilities(net, image, breast, 32, 8, batch_size=7)
    onnx = sliding_window_probabilities(OnnxNetwork(path), image, breast, 32, 8, batch_size=7)
    assert float(eager[1:].amax()) > 0.2  # the lesion classes are not all zero: the comparison can fail
    torch.testing.assert_close(onnx, eager, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def patch_bundle(bundle) -> Path:  # noqa: F811 - the whole-image bundle fixture of test_onnx_inference
    """A patch classifier bundle (random weights, 32 px patches) beside the whole-image bundle."""
    root = bundle.parent / "patch_classifier"
    shutil.copytree(BUNDLES / "patch_classifier", root, ignore=shutil.ignore_patterns("models"))
    (root / "models").mkdir()
    torch.save(tiny_patch_network().state_dict(), root / "models" / "model.pt")
    meta = {"arch": "resnet10-tiny", "image_size": [32, 32], "num_classes": 5}
    (root / "models" / "model_meta.json").write_text(json.dumps(meta))
    return root


def _maps(whole: Path, patch_bundle, out: Path, backend: str, monkeypatch) -> tuple[dict[str, np.ndarray], set[str]]:
    """predict's saved heatmaps (file name -> array) and the types of network that drew them; the
    probabilities as computed, before saving, are appended to ``_maps.computed``."""
    used: set[str] = set()
    _maps.computed = []

    def spy(network, *args, **kwargs):
        used.add(type(network).__name__)
        _maps.computed.append(sliding_window_probabilities(network, *args, **kwargs))
        return _maps.computed[-1]

    monkeypatch.setattr(predict_module, "sliding_window_probabilities", spy)
    predict(
        whole, whole.parent / "images", out / "p.csv", heatmaps=out / "maps", patch_bundle=patch_bundle,
        progress=False, backend=backend,
    )  # fmt: skip
    return {f.name: nib.load(f).get_fdata() for f in sorted((out / "maps").glob("*_heatmap.nii.gz"))}, used


def test_predict_heatmaps_run_on_the_chosen_backend_and_agree_with_eager(bundle, patch_bundle, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(onnx_runtime, "bf16_supported", lambda: False)  # float32 eager: the runtime is under test
    eager, eager_nets = _maps(bundle, patch_bundle, tmp_path / "eager", "eager", monkeypatch)
    eager_probabilities = _maps.computed
    fast, fast_nets = _maps(bundle, patch_bundle, tmp_path / "ort", "onnxruntime", monkeypatch)
    assert eager_nets == {"ResNet"} and fast_nets == {"OnnxNetwork"}
    assert len(eager) == 3 and eager.keys() == fast.keys() and len(_maps.computed) == 3
    # the probabilities as computed (the saved maps may be quantised, so one step can flip between runtimes)
    assert max(float(p[1:].amax()) for p in eager_probabilities) > 0.2  # lesion classes present: it can fail
    for ours, theirs in zip(_maps.computed, eager_probabilities):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)


def test_predict_heatmaps_fall_back_to_eager_with_a_warning(bundle, patch_bundle, tmp_path, monkeypatch, caplog):  # noqa: F811
    monkeypatch.setattr(onnx_runtime, "runtime_available", lambda name: f"{name} is not installed (test)")
    with caplog.at_level(logging.WARNING, logger=onnx_runtime.__name__):
        maps, nets = _maps(bundle, patch_bundle, tmp_path, "onnxruntime", monkeypatch)
    assert nets == {"ResNet"} and len(maps) == 3
    assert any("not installed (test)" in r.getMessage() for r in caplog.records)


def test_auto_runs_a_patch_bundle_without_a_recorded_choice_eager_with_bf16_else_on_openvino_fp32(
    patch_bundle, tmp_path, monkeypatch
):
    pytest.importorskip("openvino")
    opened = open_bundle(patch_bundle, tmp_path / "open")
    monkeypatch.setattr(heatmaps_module, "bf16_supported", lambda: False)
    monkeypatch.setattr(onnx_runtime, "bf16_supported", lambda: False)
    assert isinstance(heatmap_network(opened, "auto", 32, tmp_path), OpenVinoNetwork)
    monkeypatch.setattr(heatmaps_module, "bf16_supported", lambda: True)
    assert not isinstance(heatmap_network(opened, "auto", 32, tmp_path), (OnnxNetwork, OpenVinoNetwork))
    assert not isinstance(heatmap_network(opened, "eager", 32, tmp_path), (OnnxNetwork, OpenVinoNetwork))


def test_predict_a_single_file_with_heatmaps_gives_the_maps_of_the_folder_run(
    bundle,  # noqa: F811
    patch_bundle,
    tmp_path,
    monkeypatch,
):
    folder, _ = _maps(bundle, patch_bundle, tmp_path / "folder", "eager", monkeypatch)
    one = bundle.parent / "images" / "img1.png"
    table = predict(
        bundle, str(one), tmp_path / "one" / "p.csv", heatmaps=tmp_path / "one" / "maps", patch_bundle=patch_bundle,
        progress=False, backend="eager",
    )  # fmt: skip
    images = table[table["level"] == "image"]
    assert list(images["file"]) == [str(one)] and (images["status"] == "ok").all()
    maps = sorted((tmp_path / "one" / "maps").glob("*_heatmap.nii.gz"))
    assert [m.name for m in maps] == [n for n in folder if n.startswith("img1")]
    np.testing.assert_array_equal(nib.load(maps[0]).get_fdata(), folder[maps[0].name])
