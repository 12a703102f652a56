"""The U-Net stages of the segment-then-classify recipe hand their weights on, and only those."""

from __future__ import annotations

import pytest
import torch

from mammo_monai.networks.unet_ssl import ENCODER, lesion_unet


def test_stage_networks_and_weight_transfer(tmp_path):
    torch.manual_seed(0)
    s1 = lesion_unet(1, "unet-tiny")
    x = torch.rand(2, 1, 64, 40)  # 40 is not a multiple of 16: the head interpolates back
    assert s1(x).shape == (2, 1, 64, 40)
    torch.save({"model": s1.state_dict()}, tmp_path / "s1.pt")
    s2 = lesion_unet(2, "unet-tiny", previous_checkpoint=tmp_path / "s1.pt")
    own, first = s2.state_dict(), s1.state_dict()
    encoder = [k for k in own if k.split(".", 1)[0] in ENCODER]
    assert encoder and all(torch.equal(own[k], first[k]) for k in encoder)
    torch.save({"model": own}, tmp_path / "s2.pt")
    s3 = lesion_unet(3, "unet-tiny", out_channels=2, previous_checkpoint=tmp_path / "s2.pt")
    third = s3.state_dict()
    shared = [k for k in third if not k.startswith("final_conv")]
    assert all(torch.equal(third[k], own[k]) for k in shared)
    assert s3(x).shape == (2, 2, 64, 40) and third["final_conv.weight"].shape[0] == 2


def test_a_checkpoint_of_another_width_is_a_clear_error(tmp_path):
    torch.save({"model": lesion_unet(1, "unet").state_dict()}, tmp_path / "wide.pt")
    with pytest.raises(ValueError, match="wide.pt: stage 1 checkpoint does not match"):
        lesion_unet(2, "unet-tiny", previous_checkpoint=tmp_path / "wide.pt")
    with pytest.raises(FileNotFoundError, match="stage 2 checkpoint not found"):
        lesion_unet(3, "unet-tiny", previous_checkpoint=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="stages 1, 2 and 3"):
        lesion_unet(4)
