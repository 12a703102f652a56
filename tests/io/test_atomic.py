"""Atomic writes: a temporary name, then a rename, with the permissions of a plain write."""

from __future__ import annotations

import os
import stat

import pytest

from mammo_monai.io.atomic import atomic_path, write_json


def test_written_file_has_plain_permissions_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        write_json({"a": 1}, tmp_path / "x.json")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "x.json").stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]
