"""Loading trained weights strictly, and bfloat16 autocast on CPUs that have the kernels for it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from mammo_monai.networks.resnet import state_dict_mismatch


def load_weights(network: nn.Module, path: str | os.PathLike, what: str = "checkpoint") -> int:
    """Strictly load a plain state_dict (as MONAI bundles store ``models/model.pt``) or a checkpoint that
    holds one under ``"model"`` (what training writes per stage); returns the tensor count. A missing
    file, a file ``torch.load(weights_only=True)`` refuses (damaged, or holding more than tensors), or
    any key / shape mismatch raises before training starts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found (did the previous stage run?)")
    state = read_state_dict(path, what)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = network.state_dict()
    problem = state_dict_mismatch(own, state)
    if problem:
        raise ValueError(f"{path}: {what} does not match {type(network).__name__}: {problem}")
    network.load_state_dict(state, strict=True)
    return len(state)


def read_state_dict(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state_dict in ``path``: a plain one, or the ``"model"`` entry of a training checkpoint.

    Only ``torch.load(weights_only=True)`` is used: a file it refuses is reported as unreadable, never
    loaded another way (a pickle from elsewhere can run code).

    Raises:
        ValueError: one line naming ``path``: damaged, not a PyTorch file, or not a dict of tensors.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as err:
        raise ValueError(f"{path}: {what} {_unreadable(err)}") from err
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: {what} holds a {type(state).__name__}, not a state_dict of tensors")
    return state


def _unreadable(err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to load it unsafely."""
    text = str(err)
    if "weights_only" not in text:
        first = (text.strip().splitlines() or [type(err).__name__])[0][:200]
        return f"cannot be read (damaged or not a PyTorch file): {first}"
    detail = next((ln.strip() for ln in text.splitlines() if "WeightsUnpickler error" in ln), "")
    detail = detail.split(". Please", 1)[0]  # what it found, not how to allow it
    return (
        "is not a plain PyTorch state_dict (damaged, in the legacy format, or holding more than tensors): "
        "refused by torch.load(weights_only=True)" + (f"; {detail[:200]}" if detail else "")
    )


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """True on a CPU whose oneDNN has native bfloat16 kernels (where autocast pays off)."""
    if torch.device(device).type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def enable_cpu_autocast(network: nn.Module) -> nn.Module:
    """Run ``network``'s forward under ``torch.autocast("cpu", bfloat16)`` and return float32
    outputs, without wrapping it (state_dict keys stay as they are). MONAI's trainer ``amp`` switch
    is CUDA-only; scripts/bench_train.py measured 2.3x faster ResNet50 training here with bf16."""

    def _enter(module: nn.Module, args: tuple) -> None:
        module._autocast_ctx = torch.autocast("cpu", dtype=torch.bfloat16)
        module._autocast_ctx.__enter__()

    def _exit(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        ctx = module.__dict__.pop("_autocast_ctx", None)
        if ctx is not None:
            ctx.__exit__(None, None, None)
        return output.float() if isinstance(output, torch.Tensor) else output

    network.register_forward_pre_hook(_enter)
    network.register_forward_hook(_exit, always_call=True)
    return network
