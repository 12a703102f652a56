from __future__ import annotations

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.data.cache_record import CacheMismatchError
from mammo_monai.data.preprocess import preprocess
from mammo_monai.io.walk import find_images
from mammo_monai.synthetic import write_dicom
from tests.conftest import make_breast


def _asymmetric_dicom(path, side):
    """A tall breast image (240 x 160) with a bright square high up in the tissue."""
    pixels, region, _ = make_breast((240, 160), side="L", with_lesion=False)
    pixels[40:60, 10:30] = 65000  # top rows, near the chest wall
    if side == "R":
        pixels = pixels[:, ::-1].copy()
    return write_dicom(path, pixels, laterality=side, view="MLO")


@pytest.mark.parametrize("side", ["L", "R"])
def test_axis_convention_end_to_end(tmp_path, side):
    """Reader -> transforms -> PNG keeps rows as rows: the square stays near the top, at the chest wall (left)."""
    src = _asymmetric_dicom(tmp_path / f"x_{side}.dcm", side)
    report = preprocess([src], tmp_path / "out", size=(120, 80), workers=1, progress=False)
    row = report.iloc[0]
    assert row["status"] == "ok" and bool(row["flipped"]) == (side == "R")
    png = np.asarray(Image.open(row["output"]))
    assert png.shape == (120, 80) and png.dtype == np.uint16
    bright = np.argwhere(png > 0.95 * 65535)
    assert bright[:, 0].mean() < 35 and bright[:, 1].mean() < 20  # rows 20-30, cols 5-15 after halving


def _bad_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    good = write_dicom(folder / "good.dcm", make_breast()[0], laterality="L", view="CC")
    truncated = folder / "truncated.dcm"
    truncated.write_bytes(good.read_bytes()[:3000])
    ds = pydicom.dcmread(good)
    del ds.PixelData
    ds.save_as(folder / "nopixels.dcm")
    write_dicom(folder / "flat.dcm", np.full((50, 40), 7, np.uint16))
    (folder / "notes.xyz").write_text("not an image")
    Image.fromarray(make_breast(side="R")[0]).save(folder / "scan_R_CC.png")
    return folder


def test_bad_files_become_error_rows_and_good_ones_come_out(tmp_path):
    src = _bad_files(tmp_path / "in")
    files = sorted(src.iterdir())
    report = preprocess(files, tmp_path / "out", size=(64, 48), workers=2, progress=False)
    status = dict(zip(report["file"].map(lambda f: f.rsplit("/", 1)[1]), report["status"]))
    assert status["good.dcm"] == "ok" and status["scan_R_CC.png"] == "ok"
    for name, problem in [
        ("truncated.dcm", "truncated: the file ends after"),
        ("nopixels.dcm", "no PixelData"),
        ("flat.dcm", "constant"),
        ("notes.xyz", "unsupported file type"),
    ]:
        assert status[name].startswith("error:") and name in status[name]
        assert pd.Series([status[name]]).str.contains(problem).all(), status[name]
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == [
        "good.png",
        "good_mask.png",
        "preprocess.csv",
        "preprocess.json",
        "scan_R_CC.png",
        "scan_R_CC_mask.png",
    ]
    mask = np.asarray(Image.open(tmp_path / "out" / "good_mask.png"))
    assert set(np.unique(mask)) == {0, 255}


def test_rerun_skips_finished_outputs(tmp_path):
    src = _bad_files(tmp_path / "in")
    preprocess([src], tmp_path / "out", size=(64, 48), workers=1, progress=False)
    png = tmp_path / "out" / "good.png"
    stamp = png.stat().st_mtime_ns
    report = preprocess([src], tmp_path / "out", size=(64, 48), workers=1, progress=False)
    assert png.stat().st_mtime_ns == stamp
    assert (report["status"] == "ok").sum() == 2 and len(report) == 5  # notes.xyz is not taken from a folder


def test_tcia_layout_names_do_not_collide(tmp_path):
    for case in ("Mass-Test_P_00001_LEFT_CC", "Mass-Test_P_00001_LEFT_MLO"):
        (tmp_path / case / "s").mkdir(parents=True)
        write_dicom(tmp_path / case / "s" / "1-1.dcm", make_breast()[0])
    names = [name for _, name in find_images([tmp_path])]
    assert len(set(names)) == 2 and all(n.endswith("__s__1-1") for n in names)


def test_cli_preprocess_exit_code_and_help(tmp_path, capsys):
    src = _bad_files(tmp_path / "in")
    assert (
        main(
            ["preprocess", str(src), "--out", str(tmp_path / "out"), "--size", "64", "48", "--workers", "1", "--quiet"]
        )
        == 1
    )
    assert "2 ok, 3 failed" in capsys.readouterr().out  # exit 1: some items failed, the good ones are written
    good = tmp_path / "good"
    good.mkdir()
    (good / "good.dcm").write_bytes((src / "good.dcm").read_bytes())
    assert (
        main(
            [
                "preprocess",
                str(good),
                "--out",
                str(tmp_path / "out2"),
                "--size",
                "64",
                "48",
                "--workers",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    for cmd, option in (
        ("synth", "--patients"),
        ("preprocess", "--keep-aspect"),
        ("demo", "--workdir"),
        ("prepare", "--official-split"),
        ("patches", "--per-roi"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([cmd, "--help"])
        assert exit_info.value.code == 0
        assert option in capsys.readouterr().out


def test_a_rerun_with_other_settings_is_refused_not_silently_served(tmp_path):
    src = _bad_files(tmp_path / "in")
    preprocess([src], tmp_path / "out", size=(64, 48), workers=1, progress=False)
    with pytest.raises(CacheMismatchError, match=r"size \[64, 48\] -> \[32, 24\].*--overwrite"):
        preprocess([src], tmp_path / "out", size=(32, 24), workers=1, progress=False)
    with pytest.raises(CacheMismatchError, match="keep_aspect False -> True"):
        preprocess([src], tmp_path / "out", size=(64, 48), workers=1, progress=False, keep_aspect=True)
    report = preprocess([src], tmp_path / "out", size=(32, 24), workers=1, progress=False, overwrite=True)
    assert np.asarray(Image.open(report.loc[report["status"] == "ok", "output"].iloc[0])).shape == (32, 24)


def test_symlink_loops_and_non_mammogram_modalities_are_error_rows(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_dicom(src / "sub" / "mg.dcm", make_breast()[0], laterality="L", view="CC")
    ct = write_dicom(src / "sub" / "ct.dcm", make_breast()[0], laterality="L", view="CC")
    ds = pydicom.dcmread(ct)
    ds.Modality = "CT"
    ds.save_as(ct)
    (src / "sub" / "loop").symlink_to(src, target_is_directory=True)
    report = preprocess([src], tmp_path / "out", size=(64, 48), workers=1, progress=False)
    status = dict(zip(report["file"], report["status"]))
    assert status[str(src / "sub" / "mg.dcm")] == "ok"
    assert "Modality CT is not a mammogram" in status[str(src / "sub" / "ct.dcm")]
    assert "symlink loop" in status[str(src / "sub" / "loop")]
    again = preprocess([src], tmp_path / "out2", size=(64, 48), workers=1, progress=False, modalities=["MG", "CT"])
    assert (again["status"] == "ok").sum() == 2
