from __future__ import annotations

import torch
from monai.networks.nets import ResNet
from torch import nn

from mammo_monai.networks import GuardedConv2d, WholeImageClassifier, guard_convolutions, patch_resnet


def test_guarded_strided_pointwise_conv_gives_the_same_output_and_gradients():
    torch.manual_seed(0)
    plain = nn.Conv2d(8, 16, 1, stride=2, bias=True)
    guarded = GuardedConv2d(8, 16, 1, stride=2, bias=True).to(memory_format=torch.channels_last)
    guarded.load_state_dict(plain.state_dict())
    x = torch.rand(3, 8, 36, 28)
    xa, xb = x.clone().requires_grad_(), x.clone().to(memory_format=torch.channels_last).requires_grad_()
    ya, yb = plain(xa), guarded(xb)  # the reference runs NCHW: channels_last is the crashing kernel
    assert yb.shape == (3, 16, 18, 14) and torch.allclose(ya, yb, atol=1e-6)
    (ya * ya).sum().backward()
    (yb * yb).sum().backward()
    assert torch.allclose(plain.weight.grad, guarded.weight.grad, atol=1e-4)
    assert torch.allclose(plain.bias.grad, guarded.bias.grad, atol=1e-4)
    assert torch.allclose(xa.grad, xb.grad, atol=1e-6)


def test_bf16_conv_with_a_one_column_output_runs_in_float32():
    torch.manual_seed(0)
    conv = GuardedConv2d(256, 256, 3, stride=2, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(4, 256, 3, 2).to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = conv(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            small = conv(x)  # AMX bf16 returns garbage for this shape (2 x 1 output)
            large = conv(torch.randn(4, 256, 6, 4).to(memory_format=torch.channels_last))
    assert small.dtype == torch.float32 and torch.allclose(small, reference, atol=1e-4)
    assert large.dtype == torch.bfloat16  # feature maps with both sides > 1 keep bf16 speed


def test_bf16_conv_with_a_one_by_one_output_runs_in_float32():
    """The whole-image top's strided convolutions on a 2 x 2 map (48 x 40 images): AMX bf16 gave NaN
    in a retraining in the same process, about 6 times in 10 (no NaN in float32)."""
    torch.manual_seed(0)
    conv = GuardedConv2d(256, 256, 3, stride=2, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(4, 256, 2, 2).to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = conv(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            single = conv(x)
    assert single.shape == (4, 256, 1, 1)
    assert single.dtype == torch.float32 and torch.allclose(single, reference, atol=1e-4)


def test_guarding_keeps_parameter_names_and_counts_every_conv():
    plain = ResNet(
        block="basic",
        layers=[1, 1, 1, 1],
        block_inplanes=[8, 16, 32, 64],
        spatial_dims=2,
        n_input_channels=1,
        conv1_t_size=7,
        conv1_t_stride=2,
        shortcut_type="B",
        bias_downsample=False,
        num_classes=5,
    )
    keys, convs = list(plain.state_dict()), sum(type(m) is nn.Conv2d for m in plain.modules())
    assert convs > 8 and guard_convolutions(plain) == convs and guard_convolutions(plain) == 0
    assert list(plain.state_dict()) == keys
    net = patch_resnet("resnet10-tiny")
    assert list(net.state_dict()) == keys
    assert all(type(m) is GuardedConv2d for m in net.modules() if isinstance(m, nn.Conv2d))
    whole = WholeImageClassifier("resnet10-tiny")
    assert not [n for n, m in whole.named_modules() if type(m) is nn.Conv2d]


def test_traced_guarded_network_matches_the_eager_one():
    torch.manual_seed(0)
    net = WholeImageClassifier("resnet10-tiny").eval()
    x = torch.rand(1, 1, 144, 112)
    with torch.no_grad():
        traced = torch.jit.trace(net, x)
        assert torch.allclose(traced(x), net(x), atol=1e-5)
