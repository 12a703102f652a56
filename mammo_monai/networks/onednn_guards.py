"""Convolutions that steer clear of two oneDNN CPU kernel bugs (PyTorch 2.13, oneDNN 3.12).

1. **Heap overflow in strided 1x1 weight gradients** (the native crash: ``double free or
   corruption``, ``free(): invalid next size``, segmentation faults in autograd's backward).
   oneDNN's ``jit_1x1:avx512_core`` backward-weights kernel copies a stride-2 input into a per-thread
   "reduce to unit stride" workspace. For channels-last (nhwc) input it books ``spatial x IC``
   elements per thread but offsets each spatial chunk by ``chunk_start x 16`` (the channel block),
   so with fewer than 16 input channels any chunk that does not start at an image's first pixel
   (an odd batch split between threads, or a large feature map split into blocks) writes past its
   slice, and the last thread past the buffer. It needs a 1x1 convolution with stride > 1, no
   padding, an input size divisible by the stride, nhwc and ``in_channels < 16``: in this project
   the first projection shortcut of ``resnet10-tiny`` (8 channels). Workaround: subsample, then a
   stride-1 1x1 convolution (the same arithmetic, no strided kernel).
2. **Wrong bfloat16 results on tiny feature maps.** oneDNN's AMX ``brg_conv_fwd`` kernel returns
   garbage (often inf / NaN) for a 3x3 stride-2 convolution whose output is one column wide and at
   least two rows high, with 128 channels or more: the whole-image top's second stage at 144 x 112.
   A 1 x 1 output (the top on a 2 x 2 map: 48 x 40 test images) gave NaN too, intermittently: a
   retraining in the same process diverged in 6 of 10 runs with bf16, 0 of 10 in float32 or guarded.
   Workaround: under CPU bfloat16 (autocast or bf16 tensors), a strided convolution with an output
   side of 1 runs in float32 (such maps cost nothing).

``scripts/repro_channels_last_crash.py`` and ``scripts/repro_bf16_small_map_conv.py`` reproduce
both with PyTorch alone. :func:`guard_convolutions` swaps the class of every plain ``nn.Conv2d`` of
a network for :class:`GuardedConv2d`: parameters, names and ``state_dict`` keys do not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: oneDNN's f32 channel block on AVX-512 (8 on AVX2): 1x1 strided convolutions with fewer input
#: channels than this overflow the workspace in their weight gradient.
ONEDNN_CHANNEL_BLOCK = 16


class GuardedConv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes the two shapes oneDNN gets wrong on CPU in another, exact way
    (see the module docstring); every other call is ``nn.Conv2d.forward``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        if self._is_narrow_strided_pointwise():
            sh, sw = self.stride
            return F.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias, 1, 0, 1, self.groups)
        if self._is_small_bf16_output(x):
            autocast = torch.is_autocast_enabled("cpu")
            bias = None if self.bias is None else self.bias.float()
            with torch.autocast("cpu", enabled=False):
                out = self._conv_forward(x.float(), self.weight.float(), bias)
            return out if autocast else out.to(x.dtype)
        return super().forward(x)

    def _is_narrow_strided_pointwise(self) -> bool:
        return (
            self.kernel_size == (1, 1)
            and self.stride != (1, 1)
            and self.padding in ((0, 0), "valid")
            and self.in_channels < ONEDNN_CHANNEL_BLOCK
        )

    def _is_small_bf16_output(self, x: torch.Tensor) -> bool:
        if self.stride == (1, 1) or self.kernel_size == (1, 1) or isinstance(self.padding, str):
            return False
        bf16 = x.dtype == torch.bfloat16 or (
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
        if not bf16:
            return False
        out = [
            (x.shape[-2 + i] + 2 * self.padding[i] - self.dilation[i] * (self.kernel_size[i] - 1) - 1) // self.stride[i]
            + 1
            for i in range(2)
        ]
        return min(out) == 1


def guard_convolutions(network: nn.Module) -> int:
    """Turn every plain ``nn.Conv2d`` of ``network`` into a :class:`GuardedConv2d` in place (idempotent);
    returns how many were changed. Only the class changes, so weights, names and hooks stay."""
    changed = 0
    for module in network.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = GuardedConv2d  # same attributes, another forward: no copy, no new keys
            changed += 1
    return changed
