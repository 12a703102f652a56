"""Minimal reproducer (PyTorch only): wrong bfloat16 results, often inf / NaN, from a 3x3 stride-2
convolution whose output is one column wide (CPU, oneDNN AMX kernel).

    python scripts/repro_bf16_small_map_conv.py

Compares ``conv2d`` on bfloat16 tensors with ``conv2d`` on the same values in float32 (so only the
output rounding should differ: relative error well under 1 %). Seen with PyTorch 2.13.0+cpu
(oneDNN v3.12.0) on a Xeon with AMX: ``ONEDNN_VERBOSE=1`` names ``brg_conv_fwd:avx10_1_512_amx``;
the error is the same with one thread and with NCHW tensors, and disappears with
``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` (no AMX). Measured region: kernel 3, stride 2, padding 1,
output width 1 and height 2 or more, 128 channels or more (64 is fine); 1x1 and stride-1
convolutions are fine.
"""

from __future__ import annotations

import sys

import torch

#: (batch, channels, height, width) of the input; conv 3x3, stride 2, padding 1, channels -> channels
CASES = [
    ((4, 256, 3, 2), "wrong"),  # the whole-image top's second stage at 144 x 112 (output 2 x 1)
    ((1, 256, 8, 1), "wrong"),
    ((4, 128, 5, 2), "wrong"),
    ((4, 256, 2, 3), "ok"),  # output 1 x 2
    ((4, 256, 5, 4), "ok"),  # output 3 x 2
    ((4, 64, 3, 2), "ok"),
]


def relative_error(shape: tuple[int, int, int, int], channels_last: bool = True) -> float:
    """max |bf16 - f32| / max |f32| of one convolution (inf when the bf16 output is not finite)."""
    torch.manual_seed(0)
    n, c, h, w = shape
    x = torch.randn(n, c, h, w).to(torch.bfloat16)
    weight = (torch.randn(c, c, 3, 3) / (9 * c) ** 0.5).to(torch.bfloat16)
    if channels_last:
        x, weight = x.to(memory_format=torch.channels_last), weight.to(memory_format=torch.channels_last)
    low = torch.nn.functional.conv2d(x, weight, None, 2, 1).float()
    ref = torch.nn.functional.conv2d(x.float(), weight.float(), None, 2, 1)
    if not torch.isfinite(low).all():
        return float("inf")
    return float((low - ref).abs().max() / ref.abs().max())


def main() -> int:
    print(
        f"torch {torch.__version__}; CPU capability {torch.backends.cpu.get_cpu_capability()}; "
        f"bf16 kernels {torch.ops.mkldnn._is_mkldnn_bf16_supported()}"
    )
    print("conv2d(x, w, stride=2, padding=1), w 3x3 C->C; relative error bf16 vs f32 of the same values")
    for shape, expected in CASES:
        errors = [relative_error(shape, cl) for cl in (True, False)]
        got = "wrong" if max(errors) > 0.02 else "ok"
        note = "" if got == expected else "   <- differs from the machine this was found on"
        print(f"  input {str(shape):<18s} channels_last {errors[0]:9.3g}   NCHW {errors[1]:9.3g}   {got}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
