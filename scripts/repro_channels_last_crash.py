"""Minimal reproducer (PyTorch only): heap corruption in the weight gradient of a strided 1x1
convolution on channels_last input with fewer than 16 input channels (CPU, oneDNN).

    python scripts/repro_channels_last_crash.py

Each case runs in a child process, so a crash is reported instead of ending the script. Seen with
PyTorch 2.13.0+cpu (oneDNN v3.12.0) on an AVX-512 / AMX Xeon: ``double free or corruption``,
``free(): invalid next size``, SIGSEGV or SIGFPE inside ``mkldnn_convolution_backward_weights``.
``ONEDNN_VERBOSE=1`` names the kernel: ``jit_1x1:avx512_core,backward_weights`` with
``src:acdb`` (nhwc), i.e. ``jit_avx512_common_1x1_convolution_bwd_weights_t`` with its
"reduce to unit stride" (rtus) copy of the strided input.

Cause, read from oneDNN's source: for nhwc input ``rtus_prepare_space_info`` books ``is * ic``
elements of workspace per thread, but the backward-weights loop points each chunk's copy at
``thread_base + sp * ic_block`` (``sp``: the chunk's first output pixel) and the copy then advances
``ic`` elements per pixel. With ``ic < ic_block`` (16 for f32 on AVX-512) a chunk that starts inside
an image (``sp > 0``: an odd batch split over threads, or a large image split into blocks) ends at
``sp * 16 + n * ic > is * ic``, past its slice, and the last thread past the whole buffer. The
kernel is only chosen when the input size is a multiple of the stride (else rtus does not apply).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

CHILD = """
import torch
torch.manual_seed(0)
fmt = torch.channels_last if {cl} else torch.contiguous_format
conv = torch.nn.Conv2d({c}, 16, kernel_size=1, stride=2, bias=False).to(memory_format=fmt)
conv.weight.requires_grad_({wgrad})
for _ in range(20):
    x = torch.rand({n}, {c}, {h}, {w}).to(memory_format=fmt).requires_grad_(True)
    conv(x).sum().backward()
"""

#: (what it shows, expected, threads, child parameters)
CASES = [
    ("nhwc, 8 channels, batch 3, 36x28, 2 threads", "crash", 2, dict(n=3, c=8, h=36, w=28, cl=True, wgrad=True)),
    ("nhwc, 8 channels, batch 1, 144x112, 1 thread", "crash", 1, dict(n=1, c=8, h=144, w=112, cl=True, wgrad=True)),
    ("same as the first, NCHW", "ok", 2, dict(n=3, c=8, h=36, w=28, cl=False, wgrad=True)),
    ("same as the first, 16 channels", "ok", 2, dict(n=3, c=16, h=36, w=28, cl=True, wgrad=True)),
    ("same as the first, batch 4", "ok", 2, dict(n=4, c=8, h=36, w=28, cl=True, wgrad=True)),
    (
        "same as the first, height 35 (not a multiple of the stride)",
        "ok",
        2,
        dict(n=3, c=8, h=35, w=28, cl=True, wgrad=True),
    ),
    ("same as the first, 1 thread", "ok", 1, dict(n=3, c=8, h=36, w=28, cl=True, wgrad=True)),
    ("same as the first, no weight gradient", "ok", 2, dict(n=3, c=8, h=36, w=28, cl=True, wgrad=False)),
]


def run_case(threads: int, params: dict) -> str:
    """'ok', or how the child process died."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(**params)], env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode == 0:
        return "ok"
    if proc.returncode < 0:
        return f"crash ({signal.Signals(-proc.returncode).name})"
    tail = proc.stderr.strip().splitlines()[-1:] or [""]
    return f"crash (exit {proc.returncode}: {tail[0][:60]})"


def main() -> int:
    onednn = next(
        (
            line.strip().lstrip("- ")
            for line in torch.__config__.show().splitlines()
            if "MKL-DNN" in line or "oneDNN" in line
        ),
        "?",
    )
    print(f"torch {torch.__version__}; {onednn}; CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("conv = Conv2d(C, 16, kernel_size=1, stride=2, bias=False); 20 x conv(x).sum().backward()")
    unexpected = 0
    for what, expected, threads, params in CASES:
        got = run_case(threads, params)
        mark = "" if got.split()[0] == expected else "   <- differs from the machine this was found on"
        unexpected += bool(mark)
        print(f"  {what:<62s} {got}{mark}")
    return 0 if unexpected == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
