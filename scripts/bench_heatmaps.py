"""Heatmap speed per 1152 x 896 image, before and after the patch classifier moved onto ``predict``'s
inference backend, next to the whole-image classification time; prints numbers, asserts nothing.

"before" is the former path, which ``predict --backend eager`` still takes: eager PyTorch, channels_last,
bf16 autocast where the CPU has it. "after" runs the same windows (MONAI's ``SlidingWindowSplitter``,
:func:`~mammo_monai.inference.heatmaps.sliding_window_probabilities`) through ONNX Runtime and OpenVINO
fp32 and bf16. ``--backend auto`` for a patch bundle without a recorded choice runs eager bf16 where the
CPU has native bf16, else OpenVINO fp32 (:func:`~mammo_monai.inference.heatmaps.heatmap_auto_backend`).
The networks are the demo's
``resnet18-narrow`` patch classifier (224 px patches, stride a quarter patch) and whole-image classifier,
untrained (weights do not change the time). Per image: the median over ``--images`` breast-like images
after one untimed warm-up; "max |diff|" is the largest difference of any heatmap probability from eager fp32.

    .venv/bin/python scripts/bench_heatmaps.py                    # 3 images, 64 windows a batch
    .venv/bin/python scripts/bench_heatmaps.py --images 5 --batch 32 64 128
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_infer import realistic_images  # noqa: E402 - the scripts folder is not a package

from mammo_monai.inference.bundle import ready_for_inference  # noqa: E402
from mammo_monai.inference.heatmaps import HEATMAP_BATCH, sliding_window_probabilities  # noqa: E402
from mammo_monai.inference.onnx_runtime import (  # noqa: E402
    OnnxNetwork,
    OpenVinoNetwork,
    export_onnx,
    runtime_available,
)
from mammo_monai.networks import WholeImageClassifier, patch_network  # noqa: E402
from mammo_monai.networks.weights import bf16_supported, enable_cpu_autocast  # noqa: E402

H, W = 1152, 896


def runtimes(net: torch.nn.Module, example: torch.Tensor, workdir: Path) -> dict[str, Callable | str]:
    """name -> the network under that runtime, or why it is missing; ``net`` is eval, fp32, channels_last."""
    out: dict[str, Callable | str] = {"eager fp32": net}
    out["eager bf16 (before; auto here)" if bf16_supported() else "eager (before: fp32)"] = (
        enable_cpu_autocast(copy.deepcopy(net)) if bf16_supported() else net
    )
    path = export_onnx(net, example, workdir / f"{id(net)}.onnx")
    for name, build in (
        ("onnxruntime fp32", OnnxNetwork),
        ("openvino fp32 (auto w/o bf16)", lambda p: OpenVinoNetwork(p, "f32")),
        ("openvino bf16 (by name)", lambda p: OpenVinoNetwork(p, "bf16")),
    ):
        why = runtime_available(name.split()[0])
        if name.split()[1] == "bf16" and not bf16_supported():
            why = "no native bf16 on this CPU"
        out[name] = why if why else build(path)
    return out


def per_image(run: Callable[[int], torch.Tensor], n: int) -> tuple[float, list[torch.Tensor]]:
    """Median seconds of ``run(i)`` over i < n after one untimed warm-up, and the outputs."""
    run(0)
    seconds, outs = [], []
    for i in range(n):
        start = time.perf_counter()
        outs.append(run(i))
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), outs


@torch.inference_mode()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="timed images (median; one more as warm-up)")
    parser.add_argument("--patch", type=int, default=224, help="patch size (px)")
    parser.add_argument("--stride", type=int, default=None, help="window stride (default: a quarter patch)")
    parser.add_argument("--batch", type=int, nargs="+", default=[HEATMAP_BATCH], help="windows per forward pass")
    args = parser.parse_args(argv)
    stride = args.stride or args.patch // 4
    torch.manual_seed(0)  # the untrained weights: the same networks on every run
    images = realistic_images(args.images, H, W)
    breasts = images > 0.05
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {bf16_supported()}")
    with tempfile.TemporaryDirectory() as tmp:
        patch_net = ready_for_inference([patch_network(arch="resnet18-narrow", num_classes=5).eval()], bf16=False)[0]
        whole_net = ready_for_inference([WholeImageClassifier(arch="resnet18-narrow").eval()], bf16=False)[0]
        patch_runs = runtimes(patch_net, torch.rand(1, 1, args.patch, args.patch), Path(tmp))
        whole_runs = runtimes(whole_net, images[:1], Path(tmp))
        windows = len(range(0, H, stride)) * len(range(0, W, stride))
        inside = int(breasts[0, 0, ::stride, ::stride].sum())
        print(f"heatmap: {args.patch} px patches, stride {stride}: {inside} of {windows} window centres in the breast")
        print(f"{'runtime':32s} {'batch':>5s} {'heatmap s/img':>14s} {'max |diff|':>11s} {'classify s/img':>15s}")
        reference: list[torch.Tensor] = []
        for name, net in patch_runs.items():
            if isinstance(net, str):
                print(f"{name:32s} skipped: {net}")
                continue
            x = images.contiguous(memory_format=torch.channels_last)
            classify, _ = per_image(lambda i, f=whole_runs[name]: f(x[i : i + 1]), args.images)  # noqa: B023
            for batch in args.batch:
                seconds, maps = per_image(
                    lambda i, f=net, b=batch: sliding_window_probabilities(
                        f, images[i], breasts[i], args.patch, stride, b
                    ),
                    args.images,
                )
                reference = reference or maps
                diff = max(float((m - r).abs().max()) for m, r in zip(maps, reference))
                print(f"{name:32s} {batch:5d} {seconds:14.3f} {diff:11.2e} {classify:15.3f}")


if __name__ == "__main__":
    main()
