from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.data.adapters import ADAPTERS, DatasetTableError, load_embed
from mammo_monai.data.adapters.embed import parse_rois
from mammo_monai.synthetic.embed_tree import make_embed_tree

SIZE = (160, 128)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed")
    return root, make_embed_tree(root, patients=4, seed=5, size=SIZE)


@pytest.fixture
def copy(tree, tmp_path):
    root, _ = tree
    shutil.copytree(root, tmp_path / "embed")
    return tmp_path / "embed", tmp_path / "embed" / "tables"


def _labelled_2d(truth) -> dict[str, dict]:
    return {
        t["path"]: t
        for t in truth["images"]
        if t["label"] is not None and t["image_type"] == "2D" and not t["spot_mag"]
    }


def test_path_severity_rule_and_birads_negative_fallback(tree):
    root, truth = tree
    found = load_embed(root)
    assert ADAPTERS["embed"] is load_embed
    want = _labelled_2d(truth)
    assert len(found.images) == len(want) == 12
    got = found.images.set_index("image")
    for path, t in want.items():  # paths found from the site-mounted anon_dicom_path
        row = got.loc[path]
        assert (row.patient_id, row.exam, row.laterality, row.view) == (
            t["patient_id"],
            t["exam"],
            t["laterality"],
            t["view"],
        )
        assert (row.label, row.label_source) == (t["label"], t["label_source"])
    assert set(found.images["label_source"]) == {"pathology", "birads_negative"} and set(found.images["label"]) == {
        0,
        1,
    }
    assert [e["reason"].split(" ")[0] for e in found.errors] == ["2"]  # the BI-RADS 0 breast: unknown label
    assert "left out, their label is unknown" in found.errors[0]["reason"]


def test_cview_and_spot_views_only_when_asked(tree):
    root, _ = tree
    base = load_embed(root).images
    more = load_embed(root, image_types=("2D", "cview"), include_spot_mag=True).images
    assert len(more) == len(base) + 2 and set(more["image_type"]) == {"2D", "C-view"}


def test_roi_boxes_kept_by_match_level(tree):
    root, truth = tree
    lesions = load_embed(root).lesions
    kept = _labelled_2d(truth)
    want = [t for t in truth["lesions"] if t["path"] in kept]
    assert len(lesions) == len(want) == 7
    got = {(r.image, r.box_row0, r.box_col0, r.box_row1, r.box_col1): r for r in lesions.itertuples()}
    for t in want:
        row0, col0, row1, col1 = map(float, t["box"])  # the ROI's corner pixels: the manifest ends one past
        r = got[(t["path"], row0, col0, row1 + 1, col1 + 1)]
        assert r.lesion_type == t["kind"] and r.match_level == t["match_level"]
        assert r.pathology == ("malignant" if kept[t["path"]]["label"] else "benign")
    primary = load_embed(root, roi_match_levels=(1,)).lesions
    assert len(primary) == 6 and set(primary["match_level"]) == {1}


def test_patients_grouped_by_empi(tree):
    root, truth = tree
    images = load_embed(root).images
    assert images["patient_id"].nunique() == 4 and images.groupby("patient_id")["exam"].nunique().eq(1).all()


def test_parse_rois_reads_the_release_text():
    assert parse_rois("()") == []
    assert parse_rois("((992, 202, 1276, 647), (2098, 302, 2647, 1089))") == [
        (992, 202, 1276, 647),
        (2098, 302, 2647, 1089),
    ]


def test_missing_column_is_one_line_naming_the_file(copy):
    root, tables = copy
    path = tables / "EMBED_OpenData_clinical.csv"
    pd.read_csv(path).drop(columns="path_severity").to_csv(path, index=False)
    with pytest.raises(
        DatasetTableError, match=r"EMBED_OpenData_clinical\.csv: missing column\(s\) \['path_severity'\]"
    ):
        load_embed(root)


def test_unknown_path_severity_is_one_row_and_the_finding_is_dropped(copy):
    root, tables = copy
    path = tables / "EMBED_OpenData_clinical.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    malignant = table.index[table["path_severity"] == "0"][0]
    table.loc[malignant, "path_severity"] = "9"
    table.to_csv(path, index=False)
    found = load_embed(root)
    bad = [e for e in found.errors if "path_severity" in e["reason"]]
    assert bad == [
        {
            "file": f"EMBED_OpenData_clinical.csv: row {malignant + 2}",
            "reason": "unknown path_severity '9'; finding skipped",
        }
    ]
    assert 1 not in set(found.images["label"])  # the only cancer finding is gone: its images have no label


def test_listed_but_absent_image_is_an_error_row(copy, tree):
    _, truth = tree
    root, _ = copy
    gone = Path(sorted(t["path"] for t in _labelled_2d(truth).values())[0].replace(str(tree[0]), str(root)))
    gone.unlink()
    found = load_embed(root)
    missing = [e for e in found.errors if e["file"] == str(gone)]
    assert missing == [{"file": str(gone), "reason": "listed in EMBED_OpenData_metadata.csv but not found; skipped"}]
    assert len(found.images) == 11
