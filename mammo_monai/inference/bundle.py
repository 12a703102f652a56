"""The files of a bundle, in one place for ``evaluate``, ``predict`` and ``export``: a folder or an
exported zip unpacked, its merged configs (the shared skeleton file first, the recipe's own second), and
the network of its inference config with the trained weights. :mod:`~mammo_monai.inference.opened_bundle`
builds the one object that downstream code reads from these."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.bundle import ConfigParser

from mammo_monai.inference.bundle_archive import REQUIRED, BundleError, extract_bundle
from mammo_monai.networks import guard_convolutions
from mammo_monai.networks.weights import bf16_supported, enable_cpu_autocast, load_weights
from mammo_monai.training.model_meta import MODEL_META
from mammo_monai.training.workflow import CONFIG_FILES

#: the path a user gave for each bundle :func:`unpack_bundle` opened, by its (unpacked) folder
_GIVEN: dict[str, str] = {}


def config_files(bundle_dir: str | os.PathLike, workflow: str = "inference") -> list[str]:
    """The bundle's config files of ``workflow`` ("inference" or "evaluate") as the merged list MONAI reads
    (``--config_file "['configs/common_inference.yaml','configs/inference.yaml']"``), those present only
    (an older export without the common file)."""
    configs = Path(bundle_dir) / "configs"
    return [str(configs / name) for name in CONFIG_FILES[workflow] if (configs / name).is_file()]


def config_argument(bundle_dir: str | os.PathLike, workflow: str = "inference") -> str:
    """``--config_file`` of ``python -m monai.bundle run`` from inside the bundle folder: the merged list
    of :func:`config_files`, relative to the folder, e.g. ``['configs/common_inference.yaml','configs/inference.yaml']``."""
    return "[" + ",".join(f"'configs/{Path(f).name}'" for f in config_files(bundle_dir, workflow)) + "]"


def unpack_bundle(path: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """A bundle folder from a folder or an exported zip, unpacked under ``workdir`` within the limits of
    :mod:`~mammo_monai.inference.bundle_archive` (1 GiB in all, no member over 100:1).

    Raises:
        BundleError: one line naming ``path`` as given and the problem (missing, not a zip, truncated,
            damaged, over a limit, without ``configs/inference.yaml`` or ``models/model.pt``).
    """
    p = Path(path)
    if not p.exists():
        raise BundleError(path, "no such bundle folder or zip file")
    root = p if p.is_dir() else extract_bundle(p, workdir)
    missing = [item for item in REQUIRED if not (root / item).is_file()]
    if missing:
        hint = "; train the bundle first" if p.is_dir() and missing == ["models/model.pt"] else ""
        raise BundleError(path, f"not a trained bundle: no {' and no '.join(missing)}{hint}")
    for meta in (root / "configs" / "metadata.json", root / "models" / MODEL_META):
        try:
            json.loads(meta.read_text()) if meta.is_file() else None
        except (ValueError, UnicodeDecodeError) as err:
            raise BundleError(path, f"{meta.relative_to(root)} is not valid JSON ({err})") from err
    _GIVEN[str(root.resolve())] = str(path)
    return root


def given_name(bundle_dir: str | os.PathLike) -> str:
    """The path a user gave for a bundle opened by :func:`unpack_bundle` (not its temporary unpacked folder)."""
    return _GIVEN.get(str(Path(bundle_dir).resolve()), str(bundle_dir))


def inference_parser(bundle_dir: str | os.PathLike) -> ConfigParser:
    """The bundle's merged inference config (:func:`config_files`), ``bundle_root`` set to its folder.

    Raises:
        BundleError: a config file cannot be read (not YAML, ...); the message names the bundle.
    """
    bundle = Path(bundle_dir).resolve()
    parser = ConfigParser()
    try:
        parser.read_config(config_files(bundle, "inference"))
    except Exception as err:  # noqa: BLE001 - a broken file is one line naming the bundle
        raise BundleError(given_name(bundle), f"configs/inference.yaml cannot be read: {config_error(err)}") from err
    parser["bundle_root"] = str(bundle)
    return parser


def parsed(parser: ConfigParser, bundle_dir: str | os.PathLike, key: str):
    """``key`` of the bundle's inference config, evaluated; one line naming the bundle when it fails."""
    bundle = Path(bundle_dir).resolve()
    sys.path.insert(0, str(bundle))  # an exported bundle's configs import its scripts/ package
    try:
        return parser.get_parsed_content(key)
    except Exception as err:  # noqa: BLE001 - whatever a config does wrong, the user gets one line naming it
        raise BundleError(
            given_name(bundle), f"configs/inference.yaml cannot build {key}: {config_error(err)}"
        ) from err
    finally:
        sys.path.remove(str(bundle))


def build_inference_network(bundle_dir: str | os.PathLike, parser: ConfigParser | None = None) -> torch.nn.Module:
    """The network of the bundle's inference config with ``models/model.pt`` loaded strictly, in eval mode.

    Raises:
        BundleError: the config cannot build its ``network_def`` (a missing module, a bad ``$``
            expression, ...) or the weights cannot be loaded into it; the message names the bundle.
    """
    bundle = Path(bundle_dir).resolve()
    net = parsed(parser or inference_parser(bundle), bundle, "network_def")
    try:
        load_weights(net, bundle / "models" / "model.pt", "trained model")
    except (OSError, ValueError, RuntimeError) as err:
        raise BundleError(given_name(bundle), str(err).replace(str(bundle) + os.sep, "")) from err
    return net.eval()


def config_error(err: BaseException) -> str:
    """The innermost cause of a MONAI config error, in one line (MONAI wraps it with the whole expression)."""
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, SyntaxError) and err.text:
        return f"SyntaxError: {err.msg} in the expression {err.text.strip()[:200]!r}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


def ready_for_inference(nets: Sequence[torch.nn.Module], bf16: bool | str = "auto") -> list[torch.nn.Module]:
    """``nets`` as inference runs them: guarded convolutions, channels_last, bf16 autocast where asked
    (``"auto"``: where the CPU has native bf16)."""
    for net in nets:
        guard_convolutions(net)  # networks/onednn_guards.py: channels_last and bf16 reach two oneDNN bugs
        net.to(memory_format=torch.channels_last)
        if bf16 is True or (bf16 == "auto" and bf16_supported()):
            enable_cpu_autocast(net)
    return list(nets)
