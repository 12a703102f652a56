"""The generator's site options: an intensity profile (gamma, scale, offset, noise, bit depth) and a lesion
look (contrast, size); the default site changes nothing."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from mammo_monai.cli import main
from mammo_monai.synthetic import SITE_PROFILES, SiteProfile, make_cbis_tree


def test_profile_b_is_darker_12_bit_and_keeps_the_background():
    img = np.linspace(0, 1, 101).reshape(1, -1)
    out = SITE_PROFILES["B"].apply(img, np.ones_like(img, bool), np.random.default_rng(0))
    assert np.allclose(out * 4095, np.round(out * 4095))  # 12-bit levels
    assert out[0, 50] < img[0, 50] and np.isclose(out[0, 50], 0.7 * 0.5**1.2 + 0.03, atol=0.04)
    assert SiteProfile().apply(img, img > 0, np.random.default_rng(0)) is img


def _roi_pixels(root):
    return sum(int((pydicom.dcmread(p).pixel_array > 0).sum()) for p in root.rglob("*ROI mask images*/1-*.dcm"))


def test_site_b_lesions_are_smaller_and_site_a_files_unchanged(tmp_path):
    kw = {"patients": 3, "seed": 4, "size": (96, 72), "workers": 1, "p_mask_off": 0.0}
    make_cbis_tree(tmp_path / "plain", **kw)
    make_cbis_tree(tmp_path / "a", site=SITE_PROFILES["A"], **kw)
    make_cbis_tree(tmp_path / "b", site=SITE_PROFILES["B"], **kw)
    files = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain").rglob("*") if p.is_file())
    assert all((tmp_path / "plain" / f).read_bytes() == (tmp_path / "a" / f).read_bytes() for f in files)
    # the ROI masks and the lesion crops beside them both shrink with the lesions
    assert _roi_pixels(tmp_path / "b") < _roi_pixels(tmp_path / "a")


@pytest.mark.parametrize(
    "args,line",
    [
        (["--site-profile", "Z"], "--site-profile 'Z': choose from A, B"),
        (["--site-option", "hue=2"], "site option 'hue': choose from gamma"),
        (["--site-option", "gamma"], "--site-option 'gamma': write KEY=VALUE"),
    ],
)
def test_bad_site_options_are_one_line(tmp_path, capsys, args, line):
    assert main(["synth", "--out", str(tmp_path / "x"), "--patients", "1", "--size", "32", "24", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and line in err[0]
