"""Folder walks name every file they skip that may be an image (compressed, another format, unknown
binary), and leave text and documents alone in silence."""

from __future__ import annotations

import gzip
import zipfile

import numpy as np
from PIL import Image

from mammo_monai.data.preprocess import preprocess
from mammo_monai.io.walk import find_images, walk_files
from mammo_monai.synthetic import write_dicom
from tests.conftest import make_breast


def _folder(root):
    root.mkdir(parents=True, exist_ok=True)
    good = write_dicom(root / "good.dcm", make_breast()[0], laterality="L", view="CC")
    (root / "1-1").write_bytes(good.read_bytes())  # TCIA: a DICOM without suffix
    (root / "scan.IMA").write_bytes(good.read_bytes())  # another DICOM suffix
    (root / "scan2.dcm.gz").write_bytes(gzip.compress(good.read_bytes()))
    with zipfile.ZipFile(root / "more.zip", "w") as zf:
        zf.write(good, "inside.dcm")
    Image.fromarray(make_breast()[0][::4, ::4] // 256).convert("L").save(root / "photo.jpg")
    (root / "blob.bin").write_bytes(np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8).tobytes())
    (root / "notes.txt").write_text("scanned on the old digitiser\n")
    (root / "truth.csv").write_text("file,label\ngood.dcm,0\n")
    (root / "report.pdf").write_bytes(b"%PDF-1.4\n\x00\x01binary")
    return root


def test_find_images_reports_compressed_foreign_and_unknown_files(tmp_path):
    src = _folder(tmp_path / "in")
    problems = []
    found = find_images([src], problems)
    assert sorted(f.name for f, _ in found) == ["1-1", "good.dcm", "scan.IMA"]
    reasons = {p["file"].rsplit("/", 1)[1]: p["reason"] for p in problems}
    assert reasons == {
        "scan2.dcm.gz": "compressed with gzip: unpack it first; skipped",
        "more.zip": "compressed with zip: unpack it first; skipped",
        "photo.jpg": "a JPEG image, a format not read here (DICOM, PNG, PGM or TIFF only): convert it; skipped",
        "blob.bin": "unknown content (not DICOM, PNG, PGM or TIFF); skipped",
    }


def test_a_dataset_layout_walk_reports_what_its_filter_leaves_out(tmp_path):
    src = _folder(tmp_path / "in")
    Image.fromarray(make_breast()[0]).save(src / "preview.png")
    errors = []
    files = walk_files(src, errors, keep=lambda n: n.lower().endswith(".dcm"))
    assert [f.name for f in files] == ["good.dcm"]
    reasons = {e["file"].rsplit("/", 1)[1]: e["reason"].split(";")[0] for e in errors}
    assert reasons == {
        "1-1": "a DICOM file under a name that is not taken (no suffix)",
        "scan.IMA": "a DICOM file under a name that is not taken (.ima)",
        "preview.png": "a PNG file under a name that is not taken (.png)",
        "scan2.dcm.gz": "compressed with gzip: unpack it first",
        "more.zip": "compressed with zip: unpack it first",
        "photo.jpg": "a JPEG image, a format not read here (DICOM, PNG, PGM or TIFF only): convert it",
        "blob.bin": "unknown content (not DICOM, PNG, PGM or TIFF)",
    }


def test_preprocess_gives_a_gzipped_file_its_own_error_row(tmp_path):
    src = _folder(tmp_path / "in")
    report = preprocess([src], tmp_path / "out", size=(64, 48), workers=1, progress=False)
    status = dict(zip(report["file"].map(lambda f: f.rsplit("/", 1)[1]), report["status"]))
    assert status["scan2.dcm.gz"] == f"error: {src / 'scan2.dcm.gz'}: compressed with gzip: unpack it first; skipped"
    assert {"good.dcm", "1-1", "scan.IMA"} <= {k for k, v in status.items() if v == "ok"}
    assert not {"notes.txt", "truth.csv", "report.pdf"} & set(status)
