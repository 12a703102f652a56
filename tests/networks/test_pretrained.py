from __future__ import annotations

import hashlib
import logging

import pytest
import torch

from mammo_monai.networks import IMAGENET_GREY, input_normalisation, patch_resnet, pretrained, resolve_weights


def _torchvision_like(path, arch="resnet18"):
    torch.save(patch_resnet(arch, num_classes=1000, in_channels=3).state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def test_imagenet_is_downloaded_once_into_the_cache_and_hash_checked(tmp_path, monkeypatch):
    source = tmp_path / "published.pth"
    prefix = _torchvision_like(source)
    monkeypatch.setitem(
        pretrained.TORCHVISION_IMAGENET, "resnet18", (f"https://example.invalid/resnet18-{prefix}.pth", prefix)
    )
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append(url)
        dst_bytes = source.read_bytes()
        assert hashlib.sha256(dst_bytes).hexdigest().startswith(hash_prefix)
        open(dst, "wb").write(dst_bytes)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    cache = tmp_path / "cache"
    first = resolve_weights("imagenet", "resnet18", cache_dir=cache)
    second = resolve_weights("imagenet", "resnet18", cache_dir=cache)
    assert first == second == str(cache / f"resnet18-{prefix}.pth") and len(calls) == 1
    net = patch_resnet("resnet18", pretrained_weights=first, input_norm=input_normalisation("imagenet"))
    grey = torch.load(source, weights_only=True)["conv1.weight"].sum(1, keepdim=True)
    assert torch.equal(net.conv1.weight, grey)  # loaded strictly, RGB stem folded to grey
    (cache / f"resnet18-{prefix}.pth").write_bytes(b"not the published file")
    with pytest.raises(RuntimeError, match="SHA-256 does not start with"):
        resolve_weights("imagenet", "resnet18", cache_dir=cache)


def test_offline_download_failure_says_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(
        RuntimeError, match="cannot download the ImageNet weights of resnet50.*pretrained_weights=<file>"
    ):
        resolve_weights("imagenet", "resnet50", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no ImageNet weights for arch 'resnet10-tiny'"):
        resolve_weights("imagenet", "resnet10-tiny", cache_dir=tmp_path)


def test_no_weights_warns_and_means_from_scratch(caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_weights(None, "resnet50") is None
    assert "from-scratch" in caplog.text and input_normalisation(None) is None


def test_imagenet_normalisation_is_inside_the_network_and_keeps_the_keys():
    torch.manual_seed(0)
    plain = patch_resnet("resnet10-tiny").eval()
    normed = patch_resnet("resnet10-tiny", input_norm=IMAGENET_GREY).eval()
    normed.load_state_dict(plain.state_dict(), strict=True)
    x = torch.rand(2, 1, 64, 64)
    mean, std = IMAGENET_GREY
    torch.testing.assert_close(normed(x), plain((x - mean) / std))
    traced = torch.jit.trace(normed, x)
    torch.testing.assert_close(traced(x), normed(x))
