"""Whole-image inference speed, side by side in one run: fp32 NCHW eager (the baseline), fp32
channels_last, bf16 autocast + channels_last (as ``load_networks`` does), ``torch.compile`` (inductor),
ONNX Runtime (CPU, fp32) and OpenVINO (CPU, fp32 and bf16 where the CPU has it).

Prints images/s, the speed-up over the baseline and the largest absolute difference of P(malignant)
(softmax class 1) from fp32 eager, per batch size; warm-up runs are not timed.

    .venv/bin/python scripts/bench_infer.py            # resnet50, 1152 x 896, batch 1 and 4
    .venv/bin/python scripts/bench_infer.py --quick    # resnet18-narrow, 128 x 96: a smoke test
    .venv/bin/python scripts/bench_infer.py --bundle B --manifest M   # the per-bundle choice of ``predict
        --backend auto`` (mammo_monai/inference/backend_choice.py) on M's validation images: per backend the
        AUC difference from eager fp32, the decision flip rate at the stored thresholds, img/s, and the choice
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mammo_monai.evaluation.metrics import positive_probability
from mammo_monai.inference.onnx_runtime import OnnxNetwork, OpenVinoNetwork, export_onnx
from mammo_monai.networks import WholeImageClassifier, guard_convolutions
from mammo_monai.networks.weights import bf16_supported, enable_cpu_autocast


def realistic_images(batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth breast-like blobs in [0, 1] on a black background, with noise (not uniform noise)."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.linspace(-1, 1, h).view(h, 1)
    cols = torch.linspace(0, 1, w).view(1, w)
    body = ((cols / 0.8) ** 2 + rows**2 < 1).float() * (0.6 - 0.3 * cols)
    x = body.expand(batch, 1, h, w) + 0.05 * torch.randn(batch, 1, h, w, generator=g)
    return x.clamp(0, 1).contiguous()


def timed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, warmup: int, repeats: int) -> float:
    """Images per second of ``fn(x)`` over ``repeats`` calls after ``warmup`` untimed ones."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        start = time.perf_counter()
        for _ in range(repeats):
            fn(x)
    return repeats * x.shape[0] / (time.perf_counter() - start)


def candidates(net: torch.nn.Module, example: torch.Tensor, workdir: Path) -> dict[str, Callable | str]:
    """name -> a callable taking (N, 1, H, W) and returning logits, or a string saying why it is missing."""
    out: dict[str, Callable | str] = {"fp32 NCHW eager": net}
    cl = copy.deepcopy(net)
    guard_convolutions(cl)
    cl.to(memory_format=torch.channels_last)
    out["fp32 channels_last"] = lambda x: cl(x.contiguous(memory_format=torch.channels_last))
    if bf16_supported():
        bf = enable_cpu_autocast(copy.deepcopy(cl))
        out["bf16 autocast + channels_last"] = lambda x: bf(x.contiguous(memory_format=torch.channels_last))
    else:
        out["bf16 autocast + channels_last"] = "no native bf16 on this CPU"
    try:
        compiled = torch.compile(copy.deepcopy(cl), backend="inductor", dynamic=False)
        with torch.inference_mode():
            compiled(example.contiguous(memory_format=torch.channels_last))
        out["torch.compile fp32 channels_last"] = lambda x: compiled(x.contiguous(memory_format=torch.channels_last))
    except Exception as err:  # noqa: BLE001 - report and go on
        out["torch.compile fp32 channels_last"] = f"{type(err).__name__}: {str(err).splitlines()[0][:100]}"
    try:
        onnx_path = export_onnx(net, example, workdir / "model.onnx")
    except Exception as err:  # noqa: BLE001
        onnx_path = None
        reason = f"ONNX export failed: {type(err).__name__}: {err}"
    for name, build in (
        ("onnxruntime fp32", lambda p: OnnxNetwork(p)),
        ("openvino fp32", lambda p: OpenVinoNetwork(p, "f32")),
        ("openvino bf16", lambda p: OpenVinoNetwork(p, "bf16") if bf16_supported() else "no native bf16"),
    ):
        try:
            out[name] = build(onnx_path) if onnx_path else reason
        except Exception as err:  # noqa: BLE001 - e.g. the package is not installed
            out[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:100]}"
    return out


def bundle_choice(bundle: str, manifest: str, max_images: int) -> None:
    """Print what ``export --manifest`` records for ``bundle`` (a trained folder or an exported zip)."""
    from mammo_monai.inference.backend_choice import backend_record, onnx_file
    from mammo_monai.inference.opened_bundle import open_bundle

    with tempfile.TemporaryDirectory() as tmp:
        opened = open_bundle(bundle, tmp)
        net = opened.network
        h, w = opened.input_size
        onnx_path = onnx_file(net, torch.rand(1, 1, int(h), int(w)), opened, tmp)  # the bundle's, or cached
        record = backend_record(net, opened, manifest, onnx_path, max_images)
    if record.get("choice") is None:
        print(f"no choice: {record.get('reason')}")
        return
    print(
        f"{record['images']} validation images, AUC (eager fp32) {record['reference_auc']}, thresholds "
        f"{record['thresholds']}\nrule: {record['rule']}\n"
    )
    print(f"{'backend':18s} {'|dAUC|':>8s} {'flips':>7s} {'img/s':>8s}  accepted")
    for name, m in record["measured"].items():
        if "skipped" in m:
            print(f"{name:18s} skipped: {m['skipped']}")
        else:
            print(
                f"{name:18s} {m['auc_difference']:8.4f} {m['flip_rate']:7.2%} {m['images_per_second']:8.2f}  "
                f"{'yes' if m['accepted'] else 'no'}"
            )
    print(f"\nchoice: {record['choice']}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="resnet18-narrow at 128 x 96, few repeats")
    ap.add_argument("--arch", default=None, help="backbone (default resnet50; resnet18-narrow with --quick)")
    ap.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per batch size")
    ap.add_argument("--bundle", help="a trained bundle: measure its backend choice (with --manifest)")
    ap.add_argument("--manifest", help="prepared manifest whose validation images decide (with --bundle)")
    ap.add_argument("--max-images", type=int, default=200, help="validation images at most (with --bundle)")
    args = ap.parse_args(argv)
    if args.bundle:
        if not args.manifest:
            ap.error("--bundle needs --manifest")
        bundle_choice(args.bundle, args.manifest, args.max_images)
        return
    arch = args.arch or ("resnet18-narrow" if args.quick else "resnet50")
    h, w = args.size or ((128, 96) if args.quick else (1152, 896))
    repeats = args.repeats or (5 if args.quick else 3)
    torch.manual_seed(0)
    net = WholeImageClassifier(arch=arch, dropout=0.0).eval()
    print(f"{arch} whole-image classifier, {h} x {w}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        runners = candidates(net, realistic_images(1, h, w), Path(tmp))
        for batch in args.batches:
            x = realistic_images(batch, h, w, seed=batch)
            with torch.inference_mode():
                reference = positive_probability(net(x))
            base = None
            print(f"\nbatch {batch}\n{'backend':36s} {'img/s':>8s} {'speed-up':>9s} {'max |dP|':>10s}")
            for name, fn in runners.items():
                if isinstance(fn, str):
                    print(f"{name:36s} skipped: {fn}")
                    continue
                try:
                    with torch.inference_mode():
                        diff = float((positive_probability(fn(x).float()) - reference).abs().max())
                    rate = timed(fn, x, warmup=1, repeats=repeats)
                except Exception as err:  # noqa: BLE001
                    print(f"{name:36s} failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}")
                    continue
                base = base or rate
                print(f"{name:36s} {rate:8.2f} {rate / base:8.2f}x {diff:10.2e}")


if __name__ == "__main__":
    main()
