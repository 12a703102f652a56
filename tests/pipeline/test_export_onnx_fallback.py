"""An export whose network the ONNX exporter refuses records why and leaves no ``model.onnx`` behind."""

from __future__ import annotations

import logging

import torch

from mammo_monai.inference.export import _onnx_export


class _Unexportable(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no ONNX for this network\nsecond line")


def test_a_refused_onnx_export_is_recorded_with_its_reason_and_leaves_no_file(tmp_path, caplog):
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"partial")  # what a failed export may leave
    with caplog.at_level(logging.WARNING, logger="mammo_monai.inference.export"):
        record = _onnx_export(_Unexportable(), torch.rand(1, 1, 8, 8), onnx_path, "tiny")
    assert record["file"] is None and "no ONNX for this network" in record["reason"]
    assert "second line" not in record["reason"] and not onnx_path.exists()
    assert "tiny: no models/model.onnx in the export" in caplog.text


def test_an_export_error_without_a_message_is_recorded_not_raised(tmp_path, monkeypatch):
    def silent(*args, **kwargs):
        raise AssertionError  # no message: the reason is the exception's name alone

    monkeypatch.setattr("mammo_monai.inference.export.export_onnx", silent)
    record = _onnx_export(torch.nn.Identity(), torch.rand(1, 1, 8, 8), tmp_path / "model.onnx", "tiny")
    assert record == {"file": None, "reason": "AssertionError"}
