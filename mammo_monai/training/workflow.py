"""Run every stage of a bundle in order (``mammo-monai train``), each as one MONAI ConfigWorkflow."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from monai.bundle import ConfigParser, ConfigWorkflow

from mammo_monai.io.errors import describe_error
from mammo_monai.training.distributed import hold_process_group, on_rank0, release_process_group
from mammo_monai.training.resume import archive_stage, is_finite_number, read_done, recorded_training_id

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """A stage could not start or finish; the message names the stage and the root cause."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["learning_rate=1e-4", "stages#1#epochs=2"]`` -> dict; values are read as YAML (numbers, lists)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        out[key.strip().lstrip("-")] = yaml.safe_load(value)
    return out


#: the configs of each workflow, merged in this order (MONAI ``load_config_files``: later files override
#: top-level keys); the shared ``common_*`` copies come from ``mammo_monai/bundle_skeleton``
CONFIG_FILES: dict[str, tuple[str, ...]] = {
    "train": ("common_train.yaml", "train.yaml"),
    "inference": ("common_inference.yaml", "inference.yaml"),
    "evaluate": ("common_train.yaml", "train.yaml", "common_evaluate.yaml", "evaluate.yaml"),
}


def bundle_configs(bundle_dir: str | os.PathLike, overlays: Sequence[str | os.PathLike] = ()) -> list[str]:
    """``configs/common_train.yaml`` (the shared skeleton), ``configs/train.yaml`` (the recipe), then the
    overlays, as absolute paths: the list ``python -m monai.bundle run --config_file`` takes."""
    bundle = Path(bundle_dir).resolve()
    files = [bundle / "configs" / name for name in CONFIG_FILES["train"]]
    for f in files:
        if not f.is_file():
            hint = "; `mammo-monai bundles sync FOLDER` writes it" if f.name == "common_train.yaml" else ""
            raise FileNotFoundError(f"{bundle}: not a bundle (configs/{f.name} missing{hint})")
    out = [str(f) for f in files]
    for o in overlays:
        p = Path(o) if Path(o).is_file() else bundle / "configs" / str(o)
        if not p.is_file():
            raise FileNotFoundError(f"overlay {o} not found (as a path or in {bundle / 'configs'})")
        out.append(str(p.resolve()))
    return out


def stage_list(files: Sequence[str], overrides: Mapping[str, Any]) -> list[int]:
    """The stage numbers a bundle defines (its ``stages`` mapping), after overrides."""
    parser = ConfigParser()
    parser.read_config(list(files))
    parser.update(dict(overrides))
    return sorted(int(k) for k in parser["stages"].keys())


def best_of(evaluator: Any, where: str) -> dict[str, Any]:
    """The evaluator's best key metric and its epoch; both None (with a warning) when no validation gave
    a number (MONAI's -1 "none yet", or NaN), so a stage never reports a best model it does not have."""
    if evaluator is None:
        return {"best_metric": None, "best_metric_epoch": None}
    epoch = int(getattr(evaluator.state, "best_metric_epoch", -1))
    if epoch < 1 or not is_finite_number(evaluator.state.best_metric):
        logger.warning("%s: no validation gave a key metric that is a number: no best model", where)
        return {"best_metric": None, "best_metric_epoch": None}
    return {"best_metric": float(evaluator.state.best_metric), "best_metric_epoch": epoch}


def run_stage(
    bundle_dir: str | os.PathLike, files: Sequence[str], stage: int, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """One stage = one ConfigWorkflow run, the in-process twin of
    ``python -m monai.bundle run --config_file [...] --stage N``. Returns the evaluator's best metric.

    The merged configuration (files plus overrides, as the workflow reads it) is logged to the
    stage's MLflow run, with the config files themselves."""
    bundle = Path(bundle_dir).resolve()
    t0 = time.time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            merged = ConfigParser()
            merged.read_config(list(files))
            merged.update({**dict(overrides), "stage": stage})
            resolved = Path(tmp) / "merged_config.json"
            resolved.write_text(json.dumps(merged.get(), indent=2, default=str))
            wf = ConfigWorkflow(
                config_file=list(files),
                meta_file=str(bundle / "configs" / "metadata.json"),
                logging_file=str(bundle / "configs" / "logging.conf"),
                workflow_type="train",
                bundle_root=str(bundle),
                stage=stage,
                config_files=list(files),
                resolved_config=str(resolved),
                **dict(overrides),
            )
            wf.initialize()
            wf.run()
            result = {"stage": stage, **best_of(wf.evaluator, f"{bundle.name} stage {stage}")}
            result["seconds"] = round(time.time() - t0, 1)
            wf.finalize()
    except Exception as err:
        raise TrainingError(f"{bundle.name} stage {stage}: {describe_error(err)}") from err
    return result


def train_bundle(
    bundle_dir: str | os.PathLike,
    overlays: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
    stages: Sequence[int] | None = None,
    restart: bool = False,
) -> list[dict[str, Any]]:
    """Run the bundle's stages in order as one training (one ``training_id``, one MLflow parent run).

    A rerun continues the bundle's current training: finished stages are skipped, an interrupted stage
    resumes from its last finished epoch. ``restart`` starts a new training: the old stage folders are
    moved aside (``stageN.replaced-<time>``), never overwritten.
    """
    files = bundle_configs(bundle_dir, overlays)
    overrides = dict(overrides or {})
    todo = list(stages) if stages else stage_list(files, overrides)
    ckpt_dir = Path(bundle_dir).resolve() / "models"
    held = hold_process_group()  # under torchrun: decisions below are taken on rank 0, shared by all
    if restart:
        for stage in todo:
            on_rank0(archive_stage, ckpt_dir / f"stage{stage}")
    tid = str(overrides.pop("training_id", None) or on_rank0(recorded_training_id, ckpt_dir, restart))
    previous = os.environ.get("MAMMO_TRAINING_ID")
    os.environ["MAMMO_TRAINING_ID"] = tid
    try:
        results = []
        for stage in todo:
            done = on_rank0(read_done, ckpt_dir / f"stage{stage}")
            if done is not None and done.get("training_id") == tid:
                logger.warning(
                    "%s: stage %d already finished (best %s); skipped",
                    Path(bundle_dir).name,
                    stage,
                    done.get("best_metric"),
                )
                results.append(
                    {
                        "stage": stage,
                        "best_metric": done.get("best_metric"),
                        "best_metric_epoch": done.get("best_metric_epoch"),
                        "seconds": 0.0,
                        "skipped": True,
                    }
                )
                continue
            if done is not None:  # a finished stage of another training: keep it, train this one afresh
                on_rank0(archive_stage, ckpt_dir / f"stage{stage}")
            logger.info("%s: stage %d of %s (training %s)", Path(bundle_dir).name, stage, todo, tid)
            results.append(run_stage(bundle_dir, files, stage, overrides))
        return results
    finally:
        if previous is None:
            os.environ.pop("MAMMO_TRAINING_ID", None)
        else:
            os.environ["MAMMO_TRAINING_ID"] = previous
        if held:
            release_process_group()
