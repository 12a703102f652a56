"""Dump torchvision's ``efficientnet_v2_s`` state_dict layout (key -> shape) and a reference forward
pass into ``tests/fixtures/efficientnet_v2_s_layout.json``, the fixture that proves
``mammo_monai.networks.efficientnet_v2`` has torchvision's exact layout and arithmetic.

torchvision is not installable next to this project's CPU PyTorch (the only wheel on the index is a
CUDA build whose C operators fail to register), so run it against an unpacked wheel::

    PYTHONPATH=/path/to/unpacked/torchvision-wheel .venv/bin/python scripts/torchvision_layout.py

Importing ``torchvision`` registers fake (meta) kernels for its C operators (``nms``, ``roi_align``);
with operators that do not exist that raises, so ``torch.library.register_fake`` is stubbed for the
import. The model code itself is pure Python and needs none of them.

The reference: every tensor of the state_dict is filled by :func:`synthetic_state` (a deterministic
rule, no random generator), the network runs in eval mode on :func:`reference_input`, and the globally
pooled 1280 features (before the classifier) are stored. The test fills our network by the same rule
and must reproduce them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "efficientnet_v2_s_layout.json"


def _wave(n: int, phase: float) -> torch.Tensor:
    return torch.sin(torch.arange(n, dtype=torch.float64) * 0.7 + phase)


def synthetic_state(layout: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Deterministic values for a state_dict ``layout``: sine waves scaled so that activations keep a
    sensible size through the network (He-like convolution weights, BatchNorm near identity)."""
    state = {}
    for i, (key, shape) in enumerate(sorted(layout.items())):
        n = math.prod(shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
            continue
        w = _wave(n, float(i))
        if key.endswith("running_var"):
            w = 1.0 + 0.5 * w**2
        elif key.endswith(("running_mean", "bias")):
            w = 0.1 * w
        elif len(shape) == 1:  # a BatchNorm weight
            w = 1.0 + 0.1 * w
        else:  # a convolution or linear weight: variance 2 / fan_in, as He initialisation
            w = w * 2.0 / math.sqrt(math.prod(shape[1:]))
        state[key] = w.reshape(shape).float()
    return state


def reference_input(channels: int = 3, size: int = 64) -> torch.Tensor:
    """A fixed (1, channels, size, size) image in [0, 1] with structure in both directions."""
    rows = torch.linspace(0, 3.0, size, dtype=torch.float64)[:, None]
    cols = torch.linspace(0, 5.0, size, dtype=torch.float64)[None, :]
    planes = [0.5 + 0.5 * torch.sin(rows * (c + 1) + cols * (2 - c)) for c in range(channels)]
    return torch.stack(planes)[None].float()


def _import_torchvision_efficientnet():
    real = torch.library.register_fake

    def no_fake(op, fn=None, **kwargs):  # decorator form and direct form
        return (lambda f: f) if fn is None else fn

    torch.library.register_fake = no_fake
    try:
        import torchvision  # noqa: F401
        from torchvision.models import efficientnet
    finally:
        torch.library.register_fake = real
    return efficientnet


def _dumps(record: dict) -> str:
    """JSON with one state_dict entry per line (readable diffs when torchvision changes)."""
    lines = ["{"]
    for i, (key, value) in enumerate(record.items()):
        end = "," if i < len(record) - 1 else ""
        if isinstance(value, dict):
            inner = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
            lines += [f" {json.dumps(key)}: {{", ",\n".join(inner), f" }}{end}"]
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{end}")
    return "\n".join([*lines, "}"]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args()
    efficientnet = _import_torchvision_efficientnet()
    import torchvision

    net = efficientnet.efficientnet_v2_s().eval()
    layout = {k: list(v.shape) for k, v in net.state_dict().items()}
    net.load_state_dict(synthetic_state(layout), strict=True)
    with torch.no_grad():
        pooled = net.avgpool(net.features(reference_input())).flatten(1)[0]
    record = {
        "source": "torchvision.models.efficientnet_v2_s() (weights=None), torchvision "
        f"{torchvision.__version__}; made by scripts/torchvision_layout.py",
        "weights_file": "https://download.pytorch.org/models/efficientnet_v2_s-dd5fe13b.pth",
        "num_parameters": sum(p.numel() for p in net.parameters()),
        "state_dict": layout,
        "reference": {
            "what": "avgpool(features(x)) in eval mode, the state_dict filled by synthetic_state(), "
            "x = reference_input(3, 64)",
            "pooled_features": [round(float(v), 7) for v in pooled],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dumps(record))
    print(f"{args.out}: {len(layout)} tensors, {record['num_parameters']} parameters")
    print(f"pooled features: mean {pooled.mean():.4f}, std {pooled.std():.4f}, max |x| {pooled.abs().max():.4f}")


if __name__ == "__main__":
    main()
