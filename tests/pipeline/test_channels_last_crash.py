"""Regression: whole-image stage 2 at 144 x 112 (all layers trainable, channels_last) crashed the
interpreter in oneDNN (heap overflow in a strided 1x1 weight gradient), and with bf16 produced NaN
(AMX 3x3 stride-2 convolution on a one-column map). The configurations run in a child process so a
native crash fails the test instead of killing pytest. See mammo_monai/networks/onednn_guards.py."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import torch
from mammo_monai.networks import WholeImageClassifier
for arch, bf16 in (("resnet10-tiny", False), ("resnet18-narrow", True)):
    torch.manual_seed(0)
    net = WholeImageClassifier(arch).to(memory_format=torch.channels_last)  # as prepare_network(channels_last=True)
    if bf16:  # the AMX kernel returns garbage, not always NaN: compare with float32 first
        x = torch.rand(4, 1, 144, 112).to(memory_format=torch.channels_last)
        with torch.no_grad():
            features = net.eval().top(net.backbone(x))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = net.top(net.backbone(x)).float()
        error = float((low - features).abs().max() / features.abs().max())
        assert error < 0.05, (arch, "bf16 top features differ from float32 by", error)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    net.train()
    for batch in (3, 3, 1, 4):  # odd batches split unevenly between two threads: the crashing case
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(torch.rand(batch, 1, 144, 112))
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.randint(0, 2, (batch,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss), (arch, bf16, float(loss))
    print(arch, "bf16" if bf16 else "fp32", "ok", flush=True)
"""


def test_whole_image_training_steps_at_144x112_survive_in_fp32_and_bf16():
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", CHILD], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"exit {proc.returncode} after {proc.stdout!r}\n{proc.stderr[-3000:]}"
    assert proc.stdout.split("\n")[:2] == ["resnet10-tiny fp32 ok", "resnet18-narrow bf16 ok"]
