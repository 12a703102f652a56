"""``mammo-monai serve`` refuses to listen beyond this machine without a token, in one line, before loading."""

from __future__ import annotations

from mammo_monai.cli import main


def test_a_non_loopback_host_needs_a_token(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("MAMMO_MONAI_TOKEN", raising=False)
    assert main(["serve", "--bundle", str(tmp_path / "none"), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--host 0.0.0.0 is reachable from other machines: set --token or $MAMMO_MONAI_TOKEN" in err
    assert "\n" not in err
