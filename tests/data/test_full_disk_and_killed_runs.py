"""A full disk names the output it could not write and keeps the table of what finished; a rerun removes the
temporaries a killed run left. The full disk is simulated (writes raise ENOSPC), never made."""

from __future__ import annotations

import errno
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

import mammo_monai.data.preprocess as preprocess_module
from mammo_monai.cli import main
from mammo_monai.data.cache import cache_image
from mammo_monai.data.cache_record import claim_cache, preprocessing_settings
from mammo_monai.data.preprocess import preprocess
from mammo_monai.io.errors import WriteError
from mammo_monai.synthetic import write_dicom
from tests.conftest import make_breast


class FullDisk:
    """Writes succeed until ``free`` PNGs have been saved; then every PNG and CSV write fails with ENOSPC
    (CSVs too only when ``tables``), as on a disk that has filled up."""

    def __init__(self, monkeypatch, free: int, tables: bool = True) -> None:
        self.free, self.full = free, False
        save, to_csv = Image.Image.save, pd.DataFrame.to_csv

        def fake_save(im, fp, *args, **kwargs):
            if self.free <= 0:
                self.full = True
                raise OSError(errno.ENOSPC, "No space left on device")
            self.free -= 1
            return save(im, fp, *args, **kwargs)

        def fake_to_csv(df, path=None, *args, **kwargs):
            if self.full and tables:
                raise OSError(errno.ENOSPC, "No space left on device")
            return to_csv(df, path, *args, **kwargs)

        monkeypatch.setattr(Image.Image, "save", fake_save)
        monkeypatch.setattr(pd.DataFrame, "to_csv", fake_to_csv)


def _inputs(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_dicom(folder / f"f{i}.dcm", make_breast(seed=i)[0], laterality="L", view="CC")
    return folder


def test_a_full_disk_names_the_output_and_stops_with_the_table_of_what_finished(tmp_path, monkeypatch):
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    monkeypatch.setattr(preprocess_module, "REPORT_EVERY", 1)
    FullDisk(monkeypatch, free=2, tables=False)  # f0's mask and image fit; the disk fills at f1; then frees up
    report = preprocess([src], out, size=(64, 48), workers=1, progress=False)
    status = dict(zip(report["file"].map(lambda f: f.rsplit("/", 1)[1]), report["status"]))
    assert status["f0.dcm"] == "ok"
    assert status["f1.dcm"] == f"error: {src / 'f1.dcm'}: cannot write {out / 'f1_mask.png'}: no space left on device"
    assert status["f2.dcm"] == f"error: {src / 'f2.dcm'}: not processed: no space left on device in {out}"
    assert sorted(p.name for p in out.iterdir()) == ["f0.png", "f0_mask.png", "preprocess.csv", "preprocess.json"]


def test_when_even_the_table_cannot_be_written_the_last_one_is_kept_and_named(tmp_path, monkeypatch, capsys):
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    monkeypatch.setattr(preprocess_module, "REPORT_EVERY", 1)
    FullDisk(monkeypatch, free=2)
    with pytest.raises(WriteError, match=f"cannot write {out / 'preprocess.csv'}: no space left on device") as err:
        preprocess([src], out, size=(64, 48), workers=1, progress=False)
    assert err.value.errno == errno.ENOSPC and "the table written before, of 1 files, is kept" in str(err.value)
    kept = pd.read_csv(out / "preprocess.csv", keep_default_na=False)
    assert kept["file"].tolist() == [str(src / "f0.dcm")] and kept["status"].tolist() == ["ok"]
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
    FullDisk(monkeypatch, free=0)  # the command line: one line naming the file, exit 2
    args = ["preprocess", str(src), "--out", str(tmp_path / "out2"), "--size", "64", "48", "--workers", "1", "--quiet"]
    assert main(args) == 2
    assert f"cannot write {tmp_path / 'out2' / 'preprocess.csv'}: no space left on device" in capsys.readouterr().err


def test_the_cache_writer_reports_a_full_disk_as_a_problem_naming_the_output(tmp_path, monkeypatch):
    src = write_dicom(tmp_path / "a.dcm", make_breast()[0], laterality="L", view="CC")
    FullDisk(monkeypatch, free=1)  # the breast mask fits, the image does not
    image = {"image_id": "a", "image": str(src), "laterality": "L"}
    cached, kept, problems = cache_image(image, [], tmp_path / "cache", preprocessing_settings((64, 48)))
    assert cached is None and kept == []
    assert problems == [
        {"file": str(src), "reason": f"cannot write {tmp_path / 'cache' / 'images' / 'a.png'}: no space left on device"}
    ]
    assert sorted(p.name for p in (tmp_path / "cache" / "images").iterdir()) == ["a_mask.png"]  # no .json: not done


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_rerun_removes_the_temporaries_of_a_killed_preprocess(tmp_path):
    src, out = _inputs(tmp_path / "in", n=1), tmp_path / "out"
    preprocess([src], out, size=(64, 48), workers=1, progress=False)
    stale = [out / f".f1.png.ab12cd34-pid{_dead_pid()}.part", out / ".f2_mask.png.zz99yy88.part"]
    for part in stale:  # what a preprocess killed while writing leaves
        part.write_bytes(b"half a png")
    report = preprocess([src], out, size=(64, 48), workers=1, progress=False)
    assert report["status"].tolist() == ["ok"]
    assert not any(p.exists() for p in stale)


def test_prepare_claiming_its_cache_removes_stale_temporaries_in_every_cache_folder(tmp_path):
    dead = _dead_pid()
    stale = [tmp_path / d / f".x.png.ab12cd34-pid{dead}.part" for d in (".", "images", "lesions")]
    for part in stale:
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"half")
    claim_cache(tmp_path, preprocessing_settings((64, 48)), rebuild=True)
    assert not any(p.exists() for p in stale)
