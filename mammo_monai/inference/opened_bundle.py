"""A bundle once opened: one object that ``predict``, ``evaluate``, ``export``, the runtimes, the logged
model and segment-then-classify read, never the recipe's name.

What a recipe does at inference is declared in its own ``inference.yaml`` (the defaults in the shared
``common_inference.yaml``) and executed here:

- ``output_activation``: ``softmax`` (P(malignant) is the sum of the malignant classes' softmax:
  :func:`malignant_columns`) or ``sigmoid`` (one logit);
- ``decision_rule``: null, ``stored`` (the per-breast aggregation and threshold chosen on validation and
  stored with the weights: ``selection`` in ``models/model_meta.json``), or ``{aggregation, threshold}``;
- ``pipeline``: ``classify`` (the network scores each image) or ``segment_then_classify`` (the network
  finds candidate lesions and a partner classifier bundle, ``--patch-bundle``, scores them);
- ``outputs``: what ``predict`` writes beyond the image rows: ``decision`` (a column, at the decision
  rule), ``lesion_map`` (with ``--heatmaps``: the segmenter's map and candidates, instead of a partner's
  sliding-window heatmaps).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from monai.bundle import ConfigParser

from mammo_monai.data.preprocessing_settings import PreprocessingSettings
from mammo_monai.evaluation.calibration import Calibration
from mammo_monai.inference.bundle import (
    build_inference_network,
    inference_parser,
    parsed,
    ready_for_inference,
    unpack_bundle,
)
from mammo_monai.inference.bundle_archive import BundleError
from mammo_monai.networks.weights import load_weights
from mammo_monai.training.model_meta import MODEL_META

ACTIVATIONS = ("softmax", "sigmoid")
PIPELINES = ("classify", "segment_then_classify")
OUTPUTS = ("probability", "decision", "lesion_map")
#: the declarations and their defaults (a config without one, e.g. an export older than the declarations)
DECLARED: dict[str, Any] = {
    "output_activation": "softmax",
    "decision_rule": None,
    "pipeline": "classify",
    "outputs": ["probability"],
}


def malignant_columns(class_names: Sequence[str]) -> list[int]:
    """The classes whose softmax probabilities add up to P(malignant): names containing "malignant", or
    class 1 of a two-class network."""
    found = [i for i, n in enumerate(class_names) if "malignant" in str(n).lower()]
    if found:
        return found
    if len(class_names) == 2:
        return [1]
    raise ValueError(f"classes {list(class_names)} name no malignant class")


@dataclass(frozen=True)
class DecisionRule:
    """How a breast is scored from its views (``aggregation``: "mean" or "max") and, with a ``threshold``,
    called (1: recall). The default rule scores by the mean and calls nothing."""

    aggregation: str = "mean"
    threshold: float | None = None
    source: str = "none"

    def metrics(self, table: pd.DataFrame) -> dict[str, Any]:
        """``{"decision": ...}``: the per-breast figures at the threshold (``evaluate``), or {} without one."""
        from mammo_monai.evaluation.report import stored_decision

        if self.threshold is None:
            return {}
        return {"decision": stored_decision(table, {"aggregation": self.aggregation, "threshold": self.threshold})}


def trained_preprocessing(recorded: Mapping[str, Any], image_size: Sequence[int]) -> PreprocessingSettings:
    """The typed settings the weights were trained with: the cache's recorded preprocessing, with
    ``image_size`` as the size of a model trained before the preprocessing was recorded."""
    return PreprocessingSettings.from_record({"size": list(image_size), **recorded})


def preprocessing_kwargs(
    recorded: Mapping[str, Any], image_size: Sequence[int], modalities: Sequence[str] | None | str = "model"
) -> dict[str, Any]:
    """Keyword arguments for :func:`~mammo_monai.transforms.pipelines.preprocess_transforms` from the
    preprocessing recorded with the weights (:func:`trained_preprocessing`); ``modalities`` other than
    "model" replace the recorded ones."""
    return with_modalities(trained_preprocessing(recorded, image_size), modalities)


def with_modalities(
    settings: PreprocessingSettings, modalities: Sequence[str] | None | str = "model"
) -> dict[str, Any]:
    """``settings`` as transform keyword arguments; ``modalities`` other than "model" replace the recorded ones."""
    options = settings.transform_options()
    if modalities != "model":
        options["modalities"] = modalities
    return options


def model_preprocessing(
    bundle_root: str | os.PathLike, modalities: Sequence[str] | None | str = "model"
) -> dict[str, Any]:
    """The preprocessing a model was trained with, as keyword arguments for the transforms (what the
    inference configs call: ``eval_transforms(**model_preprocessing(@bundle_root))``)."""
    meta = _read_json(Path(bundle_root) / "models" / MODEL_META)
    size = meta.get("image_size") or declared_size(_read_json(Path(bundle_root) / "configs" / "metadata.json"))
    return preprocessing_kwargs(meta.get("preprocessing") or {}, size, modalities)


def declared_size(metadata: Mapping[str, Any]) -> list[int]:
    """The input size a recipe's ``metadata.json`` declares (``network_data_format``), [224, 224] when none."""
    image = metadata.get("network_data_format", {}).get("inputs", {}).get("image", {})
    return [int(s) for s in image.get("spatial_shape") or [224, 224]]


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


#: the calibration a bundle carries, under ``models/`` (:class:`~mammo_monai.evaluation.calibration.Calibration`)
CALIBRATION_FILE = "calibration.json"


def read_calibration(folder: Path, given: str) -> Calibration | None:
    """The bundle's ``models/calibration.json``, or None without one; one line naming the bundle otherwise."""
    path = folder / "models" / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        return Calibration.from_record(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise BundleError(given, f"models/{CALIBRATION_FILE}: {err}") from err


@dataclass
class OpenedBundle:
    """A trained bundle, opened (:func:`open_bundle`).

    Attributes:
        name, version: from ``configs/metadata.json``.
        folder: the bundle folder (a zip's unpacked copy).
        given: the path the user gave (error messages name it, never the temporary folder).
        trained: what training recorded with the weights (``models/model_meta.json``).
        preprocessing: the typed settings the weights were trained with (:func:`trained_preprocessing`).
        preprocessing_record: the cache's preprocessing as recorded with the weights ({} when not recorded;
            it also names the dataset the cache was made from).
        output_activation, decision_rule, pipeline, outputs: the recipe's declarations (module docstring).
        class_names: the classes of the network's output.
        metadata: ``configs/metadata.json``.
        partner: the partner classifier bundle (segment-then-classify, heatmaps), or None.
        calibration: the calibration of P(malignant) and its named operating points fitted on a site's
            labelled cases (``models/calibration.json``, written by ``mammo-monai calibrate``); None without one.
    """

    name: str
    version: str
    folder: Path
    given: str
    trained: dict[str, Any]
    preprocessing: PreprocessingSettings
    preprocessing_record: dict[str, Any]
    output_activation: str
    decision_rule: DecisionRule
    pipeline: str
    outputs: tuple[str, ...]
    class_names: list[str]
    metadata: dict[str, Any]
    partner: OpenedBundle | None = None
    calibration: Calibration | None = None
    _parser: ConfigParser | None = field(default=None, repr=False)

    @property
    def input_size(self) -> list[int]:
        """(H, W) the network was trained at: the cache's patch or image size, else the recorded ``image_size``."""
        if self.preprocessing.patch_size:
            return [int(self.preprocessing.patch_size)] * 2
        return [int(s) for s in self.preprocessing.size]

    @property
    def declared_size(self) -> list[int]:
        """The recipe's input size in ``metadata.json`` (the size of an untrained recipe's default)."""
        return declared_size(self.metadata)

    def transform_settings(self, modalities: Sequence[str] | None | str = "model") -> dict[str, Any]:
        """Keyword arguments for the raw-image transforms, as the training data were preprocessed."""
        return with_modalities(self.preprocessing, modalities)

    @functools.cached_property
    def network(self) -> torch.nn.Module:
        """The trained network (eval mode, float32, no autocast), built on first use."""
        return build_inference_network(self.folder, self._parser)

    def fresh_network(self) -> torch.nn.Module:
        """Another copy of the network with the trained weights (a runtime may modify the one it gets)."""
        return build_inference_network(self.folder, self._parser)

    def networks(
        self, ensemble: Sequence[str | os.PathLike] = (), workdir: str | os.PathLike = ".", bf16: bool | str = "auto"
    ) -> list[torch.nn.Module]:
        """The network plus one per ``ensemble`` entry (a checkpoint of the same architecture, or another
        bundle folder / zip), ready for inference (:func:`~mammo_monai.inference.bundle.ready_for_inference`)."""
        nets = [self.fresh_network()]
        for i, item in enumerate(ensemble):
            p = Path(item)
            if p.is_dir() or p.suffix == ".zip":
                nets.append(open_bundle(p, Path(workdir) / f"ensemble{i}").fresh_network())
            else:
                net = self.fresh_network()
                load_weights(net, p, "ensemble checkpoint")
                nets.append(net)
        return ready_for_inference(nets, bf16)

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """P(malignant) (B,) of the network's logits (B, C), by the declared ``output_activation``."""
        logits = logits.float()
        if self.output_activation == "sigmoid":
            if logits.shape[1] != 1:
                raise ValueError(
                    f"{self.given}: declares a sigmoid output but the network gives {logits.shape[1]} logits"
                )
            return torch.sigmoid(logits[:, 0])
        if logits.shape[1] < 2:
            raise ValueError(f"{self.given}: declares a softmax output but the network gives one logit")
        return torch.softmax(logits, 1)[:, malignant_columns(self.class_names)].sum(1)

    def check_request(self, tta: bool = False, ensemble: Sequence[Any] = (), heatmaps: bool = False) -> None:
        """Refuse what the declared pipeline cannot do, in one line naming the bundle (``predict`` and
        ``evaluate`` ask before scoring anything). Heatmaps are one map per class of a partner that
        declares softmax (a one-logit sigmoid partner has no classes to map)."""
        if heatmaps and self.partner is not None and self.partner.output_activation != "softmax":
            raise ValueError(
                f"{self.partner.given}: declares {self.partner.output_activation}; heatmaps need a partner "
                "that declares softmax over its classes"
            )
        if self.pipeline != "segment_then_classify":
            return
        if self.partner is None:
            raise ValueError(
                f"{self.given}: declares segment_then_classify: run it with --patch-bundle (the partner classifier)"
            )
        if tta or ensemble:
            raise ValueError(f"{self.given}: segment-then-classify has no TTA or ensembles")


def _declarations(parser: ConfigParser, given: str) -> dict[str, Any]:
    """The declared behaviour (:data:`DECLARED`), checked; one line naming the bundle and the key otherwise."""
    found = {k: parser.get(k, v) for k, v in DECLARED.items()}
    for key, allowed in (("output_activation", ACTIVATIONS), ("pipeline", PIPELINES)):
        if found[key] not in allowed:
            raise BundleError(given, f"configs/inference.yaml: {key} {found[key]!r}; expected one of {allowed}")
    outputs = found["outputs"]
    if isinstance(outputs, str) or not all(o in OUTPUTS for o in outputs):
        raise BundleError(given, f"configs/inference.yaml: outputs {outputs!r}; expected a list of {OUTPUTS}")
    if "decision" in outputs and not found["decision_rule"]:
        raise BundleError(given, "configs/inference.yaml: outputs name decision but no decision_rule is declared")
    if "lesion_map" in outputs and found["pipeline"] != "segment_then_classify":
        raise BundleError(given, "configs/inference.yaml: outputs name lesion_map, which segment_then_classify writes")
    found["outputs"] = tuple(outputs)
    return found


def _decision_rule(declared: Any, trained: Mapping[str, Any], given: str) -> DecisionRule:
    """The declared decision rule: none, the ``selection`` stored with the weights, or one given in the config."""
    if not declared:
        return DecisionRule()
    if declared == "stored":
        stored = trained.get("selection")
        if not stored or stored.get("threshold") is None:
            raise BundleError(given, "declares decision_rule: stored, but models/model_meta.json stores no selection")
        rule, source = stored, "stored with the model (validation pF1 at training time)"
    elif isinstance(declared, Mapping) and "threshold" in declared:
        rule, source = declared, "configs/inference.yaml"
    else:
        raise BundleError(
            given, f"configs/inference.yaml: decision_rule {declared!r}; expected null, stored or a mapping"
        )
    if rule.get("aggregation", "mean") not in ("mean", "max"):
        raise BundleError(given, f"decision_rule aggregation {rule.get('aggregation')!r}; expected mean or max")
    return DecisionRule(str(rule.get("aggregation", "mean")), float(rule["threshold"]), source)


def open_bundle(
    path: str | os.PathLike, workdir: str | os.PathLike, partner: str | os.PathLike | None = None
) -> OpenedBundle:
    """Open a bundle folder or exported zip (unpacked under ``workdir``: :func:`~mammo_monai.inference.bundle.unpack_bundle`)
    with its declarations, and ``partner`` (a classifier bundle) when given. Networks are built on first use.

    Raises:
        BundleError: the bundle cannot be opened, or its declarations are not valid; one line naming it.
        ValueError: a partner that is not a classifier of malignancy (:meth:`OpenedBundle.check_request`
            refuses a ``segment_then_classify`` bundle without one).
    """
    folder = unpack_bundle(path, workdir)
    parser = inference_parser(folder)
    declared = _declarations(parser, str(path))
    trained = _read_json(folder / "models" / MODEL_META)
    metadata = _read_json(folder / "configs" / "metadata.json")
    recorded = dict(trained.get("preprocessing") or {})
    names = trained.get("class_names")
    if not names and "class_names" in parser.get():
        names = parsed(parser, folder, "class_names")
    bundle = OpenedBundle(
        name=str(metadata.get("name", folder.name)),
        version=str(metadata.get("version", "")),
        folder=folder,
        given=str(path),
        trained=trained,
        preprocessing=trained_preprocessing(recorded, trained.get("image_size") or declared_size(metadata)),
        preprocessing_record=recorded,
        output_activation=declared["output_activation"],
        decision_rule=_decision_rule(declared["decision_rule"], trained, str(path)),
        pipeline=declared["pipeline"],
        outputs=declared["outputs"],
        class_names=[str(n) for n in names or []],
        metadata=metadata,
        calibration=read_calibration(folder, str(path)),
        _parser=parser,
    )
    if partner:
        bundle.partner = open_bundle(partner, Path(workdir) / "partner")
        if bundle.partner.pipeline != "classify":
            raise ValueError(f"{partner}: a partner bundle must classify (its pipeline is {bundle.partner.pipeline})")
        if bundle.partner.output_activation == "softmax":
            try:
                malignant_columns(bundle.partner.class_names)
            except ValueError as err:
                raise ValueError(f"{partner}: a partner classifier must score malignancy: {err}") from err
    return bundle
