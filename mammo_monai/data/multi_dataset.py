"""Several datasets in one manifest: ``prepare --dataset cbis-ddsm:ROOT1,mias:ROOT2`` (or ``--datasets-yaml``).

Each dataset is read by its own adapter (:data:`~mammo_monai.data.adapters.ADAPTERS`); the results are joined
into one table with a ``dataset`` column, patient ids namespaced by dataset (``cbis-ddsm/P_00001``: two
datasets that both number their patients from 1 never share a patient) and image ids prefixed with it
(``cbis-ddsm__P_00001_LEFT_CC``: one cache, no collisions). Splits group by patient and stratify by dataset
and label (:func:`~mammo_monai.data.splits.assign_splits`); ``test_dataset`` holds one whole dataset out as
the test split (leave-one-dataset-out).

Two datasets read by the same adapter (two sites' plain folders) are told apart by an alias:
``site-a=folder:/data/a,site-b=folder:/data/b`` (the alias, not the adapter, is then the ``dataset``).
A YAML list names the datasets with their adapter's options::

    datasets:
      - {name: cbis-ddsm, root: /data/cbis, official_split: true}
      - {name: inbreast, root: /data/INbreast, birads_cut: 4}
      - {name: folder, as: site-b, root: s3://bucket/site-b, patients_csv: /data/site-b-patients.csv}
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mammo_monai.data.adapters import ADAPTERS, AdapterResult
from mammo_monai.data.splits import assign_splits

#: joins a dataset's name and an image id into the manifest's image id (file-name safe)
ID_SEPARATOR = "__"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a multi-dataset run: its adapter's name, its root (a folder or an fsspec URL), the
    adapter's keyword options (``official_split`` keeps the dataset's own test split) and its ``alias``
    (the ``dataset`` value and patient namespace; default: the adapter's name)."""

    adapter: str
    root: str
    options: dict[str, Any] = field(default_factory=dict)
    alias: str = ""

    def __post_init__(self) -> None:
        if self.adapter not in ADAPTERS:
            raise ValueError(
                f"unknown dataset {self.adapter!r} in --dataset; choose from {', '.join(sorted(ADAPTERS))}"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ValueError(f"dataset name {self.name!r}: use letters, digits, '.', '_' and '-' only")
        if not str(self.root).strip():
            raise ValueError(f"dataset {self.name!r}: no root given (write NAME:ROOT)")
        accepted = inspect.signature(ADAPTERS[self.adapter]).parameters
        unknown = sorted(set(self.options) - set(accepted) - {"official_split"})
        if unknown:
            raise ValueError(f"dataset {self.name!r}: unknown option(s) {unknown} for the {self.adapter} adapter")

    @property
    def name(self) -> str:
        """The ``dataset`` value of its images: the alias, else the adapter's name."""
        return self.alias or self.adapter

    @property
    def official_split(self) -> bool:
        """Whether the dataset's own test split is kept."""
        return bool(self.options.get("official_split", False))

    def adapter_options(self) -> dict[str, Any]:
        """The options its adapter accepts (``official_split`` only where the adapter reads one)."""
        accepted = inspect.signature(ADAPTERS[self.adapter]).parameters
        return {k: v for k, v in self.options.items() if k in accepted}


def is_multi_spec(dataset: str) -> bool:
    """Whether ``--dataset`` holds ``NAME:ROOT`` items rather than one adapter name."""
    return ":" in dataset or "," in dataset


def parse_dataset_specs(text: str) -> list[DatasetSpec]:
    """``"cbis-ddsm:/data/cbis,mias:s3://bucket/mias,site-b=folder:/data/b"`` -> specs (the root is everything
    after the first colon, so URLs keep theirs; ``ALIAS=`` names a dataset apart from its adapter). Raises one ``ValueError`` line for an unknown name, a missing root, a
    dataset named twice."""
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, root = item.partition(":")
        if not sep:
            raise ValueError(f"--dataset {item!r}: write NAME:ROOT for each dataset of a multi-dataset run")
        alias, _, adapter = name.rpartition("=")
        specs.append(DatasetSpec(adapter.strip(), root.strip(), alias=alias.strip()))
    return _checked(specs, "--dataset")


def read_datasets_yaml(path: str | os.PathLike) -> list[DatasetSpec]:
    """The specs listed in a YAML file: ``datasets:`` (or the top level) a list of mappings with ``name``,
    ``root`` and the adapter's options. Raises one ``ValueError`` line naming the file."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot be read as YAML ({type(err).__name__}: {str(err).splitlines()[0]})") from err
    items = doc.get("datasets") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"{path}: expected a list of datasets, each with name and root")
    specs = []
    for i, item in enumerate(items, 1):
        item = dict(item)
        name, root, alias = item.pop("name", None), item.pop("root", None), item.pop("as", "")
        if not name or not root:
            raise ValueError(f"{path}: dataset {i} needs both name and root")
        try:
            specs.append(DatasetSpec(str(name), str(root), item, str(alias or "")))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
    return _checked(specs, str(path))


def _checked(specs: list[DatasetSpec], where: str) -> list[DatasetSpec]:
    if not specs:
        raise ValueError(f"{where}: no dataset given")
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{where}: dataset(s) {twice} named more than once; tell them apart with ALIAS=NAME:ROOT")
    return specs


def namespaced(name: str, images: pd.DataFrame, lesions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``images`` and ``lesions`` of dataset ``name`` with ``dataset`` set, patient ids ``name/<id>`` and image
    ids ``name__<id>`` (lesions follow their images)."""
    images, lesions = images.copy(), lesions.copy()
    images["dataset"] = name
    images["patient_id"] = name + "/" + images["patient_id"].astype(str)
    images["image_id"] = name + ID_SEPARATOR + images["image_id"].astype(str)
    if not lesions.empty:
        lesions["image_id"] = name + ID_SEPARATOR + lesions["image_id"].astype(str)
    return images, lesions


def join_results(parts: dict[str, tuple[AdapterResult, pd.DataFrame]]) -> tuple[AdapterResult, pd.DataFrame]:
    """Join the per-dataset (adapter result, usable images) pairs into one result and one image table,
    namespaced (:func:`namespaced`). The joined result's ``images`` counts every image the adapters listed."""
    listed, usable, lesions, errors, truth = [], [], [], [], []
    for name, (found, images) in parts.items():
        all_images, les = namespaced(name, found.images, found.lesions)
        listed.append(all_images)
        usable.append(namespaced(name, images, found.lesions.iloc[:0])[0])
        lesions.append(les)
        errors += found.errors
        truth.append(found.truth_rows)
    known = [t for t in truth if t is not None]
    joined = AdapterResult(
        pd.concat(listed, ignore_index=True),
        pd.concat(lesions, ignore_index=True),
        errors,
        sum(known) if known else None,
    )
    return joined, pd.concat(usable, ignore_index=True)


def split_datasets(
    images: pd.DataFrame,
    specs: list[DatasetSpec],
    test_fraction: float,
    val_fraction: float,
    seed: int = 0,
    test_dataset: str | None = None,
) -> pd.DataFrame:
    """Splits of a joined image table: grouped by patient, stratified by dataset and label.

    With ``test_dataset`` every image of that dataset is the test split and the validation split is carved
    from the others (``test_fraction`` unused). Otherwise a dataset whose spec keeps its official split
    keeps its ``test`` rows and the other datasets get ``test_fraction`` of their patients as test."""
    if test_dataset is not None:
        names = [s.name for s in specs]
        if test_dataset not in names:
            raise ValueError(f"--test-dataset {test_dataset!r} is not one of the datasets read ({', '.join(names)})")
        if len(names) < 2:
            raise ValueError("--test-dataset needs at least two datasets: one to hold out, one to train on")
        held = images["dataset"] == test_dataset
        rest = assign_splits(images[~held], 0.0, val_fraction, seed=seed, strata=["dataset"])
        return pd.concat([rest, images[held].assign(split="test")]).loc[images.index]
    official = {s.name for s in specs if s.official_split}
    keep = images["dataset"].isin(official)
    return assign_splits(images, test_fraction, val_fraction, seed=seed, keep_test=keep, strata=["dataset"])


def dataset_summary(images: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per dataset: images, patients, labels, splits, and the label rule(s) its adapter recorded in
    ``label_source`` (absent when no adapter recorded one)."""
    out: dict[str, dict[str, Any]] = {}
    for name, group in images.groupby("dataset", sort=True):
        out[str(name)] = {
            "images": len(group),
            "patients": int(group["patient_id"].nunique()),
            "labels": {str(k): int(v) for k, v in group["label"].value_counts().sort_index().items()},
            "splits": {str(k): int(v) for k, v in group["split"].value_counts().sort_index().items()},
        }
        if "label_source" in group:
            rules = sorted({str(v) for v in group["label_source"].dropna() if str(v).strip()})
            if rules:
                out[str(name)]["label_source"] = rules
    return out


def label_rules(images: pd.DataFrame) -> dict[str, list[str]]:
    """Per dataset, the label rule(s) its adapter recorded in ``label_source`` (e.g. ``BI-RADS 4-5 =
    suspicious``); empty when no image carries one."""
    if "label_source" not in images or "dataset" not in images:
        return {}
    return {name: d["label_source"] for name, d in dataset_summary(images).items() if "label_source" in d}


def choose_datasets(
    dataset: str | None, root: str | None, yaml_path: str | None, cli_options: dict[str, Any] | None = None
) -> tuple[str | list[DatasetSpec], str | None]:
    """``prepare``'s dataset arguments -> (an adapter name and its root) or (specs, None).

    ``--dataset NAME --root ROOT`` (one dataset, as before), ``--dataset NAME:ROOT,NAME:ROOT`` or
    ``--datasets-yaml FILE``. ``cli_options`` (``official_split``, ``birads_cut``, ``patients_csv`` from the
    command line) go to every spec whose adapter takes them and that does not set them itself. Raises one
    ``ValueError`` line for a missing or contradictory argument or an unknown dataset."""
    if yaml_path:
        if dataset or root:
            raise ValueError("--datasets-yaml lists the datasets: give neither --dataset nor --root with it")
        specs = read_datasets_yaml(yaml_path)
    elif not dataset:
        raise ValueError("give --dataset NAME --root ROOT, --dataset NAME:ROOT,NAME:ROOT,... or --datasets-yaml FILE")
    elif is_multi_spec(dataset):
        if root:
            raise ValueError("--root goes with one --dataset NAME; write NAME:ROOT for each of several datasets")
        specs = parse_dataset_specs(dataset)
    else:
        if dataset not in ADAPTERS:
            raise ValueError(f"unknown dataset {dataset!r} in --dataset; choose from {', '.join(sorted(ADAPTERS))}")
        if not root:
            raise ValueError(f"--dataset {dataset} needs --root (or write {dataset}:ROOT)")
        return dataset, root
    return [_with_options(s, cli_options or {}) for s in specs], None


def _with_options(spec: DatasetSpec, cli_options: dict[str, Any]) -> DatasetSpec:
    accepted = set(inspect.signature(ADAPTERS[spec.adapter]).parameters)
    extra = {k: v for k, v in cli_options.items() if k in accepted and k not in spec.options and v is not None}
    return DatasetSpec(spec.adapter, spec.root, {**extra, **spec.options}, spec.alias) if extra else spec
