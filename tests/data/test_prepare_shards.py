"""``prepare --shard K/N`` and ``--merge``: disjoint parts of a dataset, merged into the manifest of one prepare."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.data import read_manifest
from mammo_monai.data.prepare import prepare
from mammo_monai.data.shards import ShardError, parse_shard
from mammo_monai.synthetic import make_cbis_tree

COLUMNS = ["patient_id", "laterality", "view", "label", "split"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    base = tmp_path_factory.mktemp("raw")
    make_cbis_tree(base, patients=6, seed=5, size=(192, 144), workers=1, progress=False)
    return base


def _prepare(raw, out, **kwargs):
    return prepare("cbis-ddsm", raw, out, workers=1, progress=False, **{"size": (96, 72), **kwargs})


@pytest.fixture(scope="module")
def sharded(raw, tmp_path_factory):
    """(unsharded manifest folder, sharded-and-merged manifest folder, the two shard summaries)."""
    base = tmp_path_factory.mktemp("prepared")
    _prepare(raw, base / "whole")
    parts = [_prepare(raw, base / "sharded", shard=f"{k}/2") for k in (1, 2)]
    _prepare(raw, base / "sharded", merge=True)
    return base / "whole", base / "sharded", parts


@pytest.mark.parametrize("spec", ["0/4", "5/4", "2", "a/b", "1/0", "-1/4"])
def test_a_bad_shard_spec_is_refused_with_the_spec_and_the_rule(spec):
    with pytest.raises(ShardError, match=r"--shard .*(expected K/N|K must be between|at least 1)"):
        parse_shard(spec)


def test_the_cli_refuses_a_bad_shard_in_one_line_before_reading_the_dataset(tmp_path, capsys):
    args = ["prepare", "--dataset", "cbis-ddsm", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]
    assert main([*args, "--shard", "3/2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "mammo-monai prepare: error: --shard 3/2: K must be between 1 and 2 (shards are numbered 1/2 to 2/2)"
    assert parse_shard(" 2 / 8 ") == (2, 8)


def test_two_shards_merged_give_the_images_labels_and_splits_of_one_prepare(sharded):
    whole_dir, merged_dir, parts = sharded
    whole, whole_lesions = read_manifest(whole_dir)
    merged, merged_lesions = read_manifest(merged_dir)
    assert all(p["images"] > 0 for p in parts) and sum(p["images"] for p in parts) == len(whole)
    a = whole.set_index("image_id")[COLUMNS].sort_index()
    b = merged.set_index("image_id")[COLUMNS].sort_index()
    pd.testing.assert_frame_equal(a, b)
    assert a["split"].nunique() > 1  # splits assigned over the whole dataset, not per shard
    # every image cached by exactly one shard, a patient's images all in the same one
    shard = merged["image"].str.extract(r"/shards/(\d)-of-2/", expand=False)
    assert shard.notna().all() and (shard.groupby(merged["patient_id"]).nunique() == 1).all()
    pixels = {r.image_id: np.asarray(Image.open(r.image)) for r in whole.itertuples()}
    assert all(np.array_equal(np.asarray(Image.open(r.image)), pixels[r.image_id]) for r in merged.itertuples())
    key = ["image_id", "lesion_type", "pathology", "center_row", "center_col"]
    pd.testing.assert_frame_equal(
        whole_lesions[key].sort_values(key).reset_index(drop=True),
        merged_lesions[key].sort_values(key).reset_index(drop=True),
    )


def test_merge_refuses_shards_made_with_other_settings_and_writes_nothing(raw, sharded):
    _, merged_dir, _ = sharded
    before = (merged_dir / "cache.json").read_text()
    with pytest.raises(ShardError, match=r"1-of-2: shard 1/2 was prepared differently .*size \[96, 72\] -> \[64, 48\]"):
        _prepare(raw, merged_dir, size=(64, 48), merge=True)
    assert (merged_dir / "cache.json").read_text() == before


def test_merge_refuses_a_missing_or_unfinished_shard_and_a_rerun_completes_it(raw, tmp_path):
    out = tmp_path / "m"
    _prepare(raw, out, shard="1/2")
    with pytest.raises(ShardError, match=r"2-of-2: shard 2/2 is missing .*prepare --shard 2/2"):
        _prepare(raw, out, merge=True)
    (out / "shards" / "2-of-2").mkdir()  # a job that died before it finished
    with pytest.raises(ShardError, match=r"2-of-2: shard 2/2 is unfinished"):
        _prepare(raw, out, merge=True)
    assert not (out / "images.csv").exists()
    assert _prepare(raw, out, shard="2/2")["images"] > 0
    assert _prepare(raw, out, shard="1/2")["reused_cache"] is True  # a rerun resumes, nothing remade
    summary = _prepare(raw, out, merge=True)
    assert summary["shards"] == 2 and len(read_manifest(out)[0]) == summary["images"]
