"""``mammo-monai serve`` refuses, in one line and before the server starts, to listen beyond this machine without
a token or to serve a bundle it cannot open."""

from __future__ import annotations

from mammo_monai.cli import main


def test_a_non_loopback_host_needs_a_token(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("MAMMO_MONAI_TOKEN", raising=False)
    assert main(["serve", "--bundle", str(tmp_path / "none"), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--host 0.0.0.0 is reachable from other machines: set --token or $MAMMO_MONAI_TOKEN" in err
    assert "\n" not in err


def test_a_bundle_that_cannot_be_opened_is_one_line_before_the_server_starts(monkeypatch, capsys, tmp_path):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("server started")))
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    assert main(["serve", "--bundle", str(tmp_path / "bad.zip"), "--port", "8765"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.zip: not a readable zip" in err and "\n" not in err and "Traceback" not in err


def test_overlays_need_one_worker(capsys, tmp_path):
    args = ["serve", "--bundle", str(tmp_path / "w"), "--patch-bundle", str(tmp_path / "p"), "--workers", "2"]
    assert main(args) == 2
    assert "--patch-bundle needs --workers 1" in capsys.readouterr().err
