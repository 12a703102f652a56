"""Benchmark: patch-classifier training samples/s, MONAI SupervisedTrainer (what the bundles run) vs
a bare PyTorch loop on the same model, batch and in-memory data; and whole-image inference latency.

Modes: fp32 NCHW, fp32 channels_last, bf16 autocast (channels_last). MONAI's trainer has no CPU
autocast switch (its ``amp`` is CUDA-only), so bf16 is measured in the bare loop only.

Usage: python scripts/bench_train.py [--arch resnet50] [--batch 16] [--iters 6] [--size 224]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from monai.engines import SupervisedTrainer

from mammo_monai.networks import WholeImageClassifier, patch_resnet


def _model(arch: str, channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    net = patch_resnet(arch, num_classes=5)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def bare_loop(arch, data, iters, channels_last, bf16):
    net = _model(arch, channels_last).train()
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step(batch):
        x, y = batch["image"], batch["label"]
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    step(data[0])  # warm-up
    t0 = time.perf_counter()
    for i in range(iters):
        step(data[i % len(data)])
    return iters * data[0]["image"].shape[0] / (time.perf_counter() - t0)


def monai_trainer(arch, data, iters, channels_last):
    net = _model(arch, channels_last)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=data[:1],
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-4),
        loss_function=torch.nn.CrossEntropyLoss(),
    )
    trainer.run()  # warm-up epoch of one batch
    trainer.data_loader = [data[i % len(data)] for i in range(iters)]
    trainer.state.max_epochs, trainer.state.epoch_length = 2, iters
    t0 = time.perf_counter()
    trainer.run()
    return iters * data[0]["image"].shape[0] / (time.perf_counter() - t0)


def whole_latency(arch, channels_last, bf16, size=(1152, 896), repeats=3):
    net = WholeImageClassifier(arch).eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    x = torch.rand(1, 1, *size)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    with torch.inference_mode(), ctx():
        net(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(x)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=6)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    data = [
        {"image": torch.rand(args.batch, 1, args.size, args.size), "label": torch.randint(0, 5, (args.batch,))}
        for _ in range(3)
    ]
    print(
        f"patch classifier {args.arch}, batch {args.batch}, {args.size}px, {args.iters} iterations, torch threads {torch.get_num_threads()}"
    )
    for name, cl, bf16 in (
        ("fp32 NCHW", False, False),
        ("fp32 channels_last", True, False),
        ("bf16 autocast + channels_last", True, True),
    ):
        bare = bare_loop(args.arch, data, args.iters, cl, bf16)
        line = f"  {name:<30s} bare loop {bare:7.2f} samples/s"
        if not bf16:
            mon = monai_trainer(args.arch, data, args.iters, cl)
            line += f" | MONAI trainer {mon:7.2f} samples/s (overhead {100 * (bare / mon - 1):+.1f} %)"
        print(line, flush=True)
    print(f"whole-image inference {args.arch}, 1 x 1152 x 896")
    for name, cl, bf16 in (
        ("fp32 NCHW", False, False),
        ("fp32 channels_last", True, False),
        ("bf16 autocast + channels_last", True, True),
    ):
        print(f"  {name:<30s} {1000 * whole_latency(args.arch, cl, bf16):8.0f} ms/image", flush=True)


if __name__ == "__main__":
    main()
