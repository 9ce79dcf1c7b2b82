"""pipeline.core.fs: the one atomic write, file sha256 and writer lock every package uses."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.fs import LockHeldError, atomic_writer, exclusive_lock, sha256_file, write_atomic

REPO = Path(__file__).resolve().parents[1]


def test_write_atomic_replaces_the_file_keeps_its_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.json"
    write_atomic(path, b"one")
    assert path.read_bytes() == b"one"
    path.chmod(0o600)
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and (path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_an_exception_in_the_block_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    write_atomic(path, b"old")
    with pytest.raises(ValueError, match="boom"), atomic_writer(path, suffix=".x-tmp") as fh:
        fh.write(b"half")
        raise ValueError("boom")
    assert path.read_bytes() == b"old" and list(tmp_path.glob(".*.x-tmp")) == []


def test_a_kill_at_the_crash_point_leaves_the_old_file_and_a_temp_with_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    write_atomic(path, b"old")
    code = (
        "import sys; from pathlib import Path; from pipeline.core.fs import write_atomic\n"
        "write_atomic(Path(sys.argv[1]), b'new', crash_at='json.before_replace')"
    )
    env = {**os.environ, "ECGPIPE_TEST_CRASH_AT": "json.before_replace:1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=False)
    assert done.returncode == -9
    assert path.read_bytes() == b"old"
    (temp,) = tmp_path.glob(".manifest.json.*.tmp")
    assert temp.read_bytes() == b"new"


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_the_lock_is_exclusive_names_its_holder_and_is_cleared_on_release(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with exclusive_lock(path):
        assert path.read_text() == f"pid {os.getpid()}"
        with pytest.raises(LockHeldError) as info, exclusive_lock(path):
            pass
        assert info.value.holder == f"pid {os.getpid()}"
    assert path.read_text() == ""
    with exclusive_lock(path):  # free again
        pass
