"""Several datasets in one manifest (``prepare --dataset NAME:ROOT,...``): a ``dataset`` column, patients
namespaced by dataset, splits grouped by patient and stratified by dataset and label, leave-one-dataset-out,
the label rule an adapter records, and one clear line for a bad dataset list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.data.adapters import ADAPTERS, load_folder
from mammo_monai.data.multi_dataset import choose_datasets, parse_dataset_specs, read_datasets_yaml
from mammo_monai.data.prepare import prepare
from tests.data.test_other_adapters import build_mias

SIZE = (32, 32)


def class_folders(root, neg: int, pos: int, seed: int = 0):
    """``root/neg`` and ``root/pos`` of small 8-bit tissue PNGs named ``case<i>.png`` (every file its own
    patient; the same names in every dataset, so only namespacing keeps them apart)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SIZE[0], : SIZE[1]]
    tissue = ((yy - SIZE[0] / 2) / (0.45 * SIZE[0])) ** 2 + (xx / (0.7 * SIZE[1])) ** 2 <= 1
    for cls, n in (("neg", neg), ("pos", pos)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            img = tissue * (80 + 40 * rng.random(SIZE)) + tissue * (60 if cls == "pos" else 0)
            Image.fromarray(img.astype(np.uint8)).save(root / cls / f"case{i}.png")
    return root


def _prepare(specs, out, **kwargs):
    return prepare(specs, None, out, size=SIZE, workers=1, progress=False, **kwargs)


def test_two_datasets_one_manifest_with_namespaced_patients(tmp_path):
    specs = parse_dataset_specs(f"mias:{build_mias(tmp_path / 'mias')},folder:{class_folders(tmp_path / 'f', 6, 3)}")
    summary = _prepare(specs, tmp_path / "out")
    images = pd.read_csv(tmp_path / "out" / "images.csv", dtype={"patient_id": str})
    assert images.groupby("dataset").size().to_dict() == {"folder": 9, "mias": 5}
    assert all(p.startswith(f"{d}/") for p, d in zip(images["patient_id"], images["dataset"]))
    assert images.loc[images["dataset"] == "mias", "patient_id"].nunique() == 3  # mdb001+002, 003+004, 005
    assert images["image_id"].is_unique
    assert all(i.startswith(f"{d}__") for i, d in zip(images["image_id"], images["dataset"]))
    lesions = pd.read_csv(tmp_path / "out" / "lesions.csv")
    assert set(lesions["image_id"]) <= set(images.loc[images["dataset"] == "mias", "image_id"])
    assert summary["datasets"]["mias"]["images"] == 5 and summary["datasets"]["folder"]["labels"] == {"0": 6, "1": 3}
    assert summary["dataset"] == "mias+folder"


def test_same_adapter_twice_under_aliases_and_stratified_splits(tmp_path):
    a, b = class_folders(tmp_path / "a", 30, 10, seed=1), class_folders(tmp_path / "b", 10, 30, seed=2)
    specs = parse_dataset_specs(f"site-a=folder:{a},site-b=folder:{b}")
    _prepare(specs, tmp_path / "out", test_fraction=0.2, val_fraction=0.2)
    images = pd.read_csv(tmp_path / "out" / "images.csv", dtype={"patient_id": str})
    counts = images.groupby(["split", "dataset", "label"]).size()
    # every stratum (dataset x label) in every split, about its share: 20 % of 30 is 6, of 10 is 2
    assert counts["test"].to_dict() == {("site-a", 0): 6, ("site-a", 1): 2, ("site-b", 0): 2, ("site-b", 1): 6}
    assert set(counts["val"].index) == set(counts["train"].index) == set(counts["test"].index)
    assert images.groupby("patient_id")["split"].nunique().max() == 1


def test_leave_one_dataset_out(tmp_path):
    a, b = class_folders(tmp_path / "a", 8, 4, seed=1), class_folders(tmp_path / "b", 5, 3, seed=2)
    specs = parse_dataset_specs(f"site-a=folder:{a},site-b=folder:{b}")
    summary = _prepare(specs, tmp_path / "out", test_dataset="site-b", val_fraction=0.25)
    images = pd.read_csv(tmp_path / "out" / "images.csv")
    assert (images.loc[images["dataset"] == "site-b", "split"] == "test").all()
    assert set(images.loc[images["dataset"] == "site-a", "split"]) == {"train", "val"}
    assert summary["datasets"]["site-b"]["splits"] == {"test": 8}
    with pytest.raises(ValueError, match="'nosuch' is not one of the datasets read"):
        _prepare(specs, tmp_path / "out2", test_dataset="nosuch")


def test_official_test_split_is_kept_for_that_dataset_only(tmp_path):
    kept = tmp_path / "kept"
    class_folders(kept / "train", 4, 4)
    class_folders(kept / "test", 3, 3, seed=3)
    yaml = tmp_path / "datasets.yaml"
    yaml.write_text(
        f"datasets:\n  - {{name: folder, as: official, root: {kept}, official_split: true}}\n"
        f"  - {{name: folder, as: other, root: {class_folders(tmp_path / 'o', 10, 10)}}}\n"
    )
    _prepare(read_datasets_yaml(yaml), tmp_path / "out", test_fraction=0.2)
    images = pd.read_csv(tmp_path / "out" / "images.csv")
    official = images[images["dataset"] == "official"]
    assert (official["split"] == "test").sum() == 6 and official["image_id"].str.contains("__test__").eq(
        official["split"] == "test"
    ).all()
    assert (images.loc[images["dataset"] == "other", "split"] == "test").sum() == 4


def test_prepare_prints_each_datasets_label_rule(tmp_path, monkeypatch, capsys):
    def with_rule(root, **kw):  # an adapter that records its label rule, as the BI-RADS-only datasets do
        found = load_folder(root, **kw)
        found.images["label_source"] = "BI-RADS 4-5 = suspicious"
        return found

    monkeypatch.setitem(ADAPTERS, "birads-folder", with_rule)
    a, b = class_folders(tmp_path / "a", 3, 3), class_folders(tmp_path / "b", 3, 3, seed=1)
    rc = main(
        ["prepare", "--dataset", f"birads-folder:{a},folder:{b}", "--out", str(tmp_path / "out")]
        + ["--size", "32", "32", "--workers", "1", "--quiet"]
    )
    err = capsys.readouterr().err
    assert rc == 0 and "prepare: birads-folder labels: BI-RADS 4-5 = suspicious" in err
    assert "folder labels:" not in err.replace("birads-folder labels:", "")


@pytest.mark.parametrize(
    "args,line",
    [
        (
            ["--dataset", "nosuch:/x"],
            "unknown dataset 'nosuch' in --dataset; choose from " + ", ".join(sorted(ADAPTERS)),
        ),
        (["--dataset", "mias:/no/such/folder"], "/no/such/folder: the mias dataset's folder does not exist"),
        (["--dataset", "mias:"], "dataset 'mias': no root given (write NAME:ROOT)"),
        (["--dataset", "mias"], "--dataset mias needs --root (or write mias:ROOT)"),
        (["--dataset", "mias:/a,mias:/b"], "dataset(s) ['mias'] named more than once"),
        (["--dataset", "mias:/a", "--root", "/b"], "--root goes with one --dataset NAME"),
    ],
)
def test_bad_dataset_list_is_one_clear_line(tmp_path, capsys, args, line):
    rc = main(["prepare", *args, "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and line in err[0]


def test_single_dataset_form_is_unchanged(tmp_path):
    root = class_folders(tmp_path / "f", 4, 2)
    assert choose_datasets("folder", str(root), None) == ("folder", str(root))
    summary = prepare("folder", root, tmp_path / "out", size=SIZE, workers=1, progress=False)
    images = pd.read_csv(tmp_path / "out" / "images.csv", dtype={"patient_id": str})
    assert "datasets" not in summary and set(images["patient_id"]) == set(images["image_id"])
    assert not images["patient_id"].str.contains("/").any()
