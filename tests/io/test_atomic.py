"""Atomic writes: a temporary name, then a rename, with the permissions of a plain write."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys

import pytest

from mammo_monai.io.atomic import atomic_path, remove_stale_parts, write_json
from mammo_monai.io.errors import WriteError


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


def _dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_name_their_writer_and_stale_ones_are_removed(tmp_path):
    with atomic_path(tmp_path / "x.png") as tmp:
        assert tmp.name.startswith(".x.png.") and tmp.name.endswith(f"-pid{os.getpid()}.part")
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a run still writing
    try:
        live = f".w.png.abcd1234-pid{writer.pid}.part"
        dead = f".y.png.abcd1234-pid{_dead_pid()}.part"
        reused = f".v.png.abcd1234-pid{os.getpid()}.part"  # a killed run whose pid this rerun got again
        legacy = ".z.png.k3j2h1g0.part"  # written by versions that did not record the process
        for name in (live, dead, reused, legacy, "download.part", "notes.txt"):
            (tmp_path / name).write_bytes(b"half")
        removed = remove_stale_parts(tmp_path)
    finally:
        writer.kill()
        writer.wait()
    assert sorted(p.name for p in removed) == sorted([dead, reused, legacy])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live, "download.part", "notes.txt", "x.png"])


def test_an_error_about_an_input_is_not_blamed_on_the_output(tmp_path):
    with pytest.raises(FileNotFoundError) as err, atomic_path(tmp_path / "copy.pt") as tmp:
        shutil.copyfile(tmp_path / "missing.pt", tmp)
    assert "missing.pt" in str(err.value) and not isinstance(err.value, WriteError)


def test_a_failed_write_names_the_output_not_the_temporary(tmp_path):
    with pytest.raises(WriteError) as err, atomic_path(tmp_path / "x.csv"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(err.value) == f"cannot write {tmp_path / 'x.csv'}: no space left on device"
    assert err.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []
