"""Atomic writes: a crash or a kill at any point leaves the old file (or none), never part."""

import os
import subprocess
import sys

import pytest

from dkp.runtime import atomic
from dkp.runtime.atomic import write_json, write_text


def test_a_crash_before_the_rename_leaves_the_old_file_or_none(tmp_path, monkeypatch):
    path = tmp_path / "results.json"

    def crash(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"a": 1})
    assert os.listdir(tmp_path) == []  # none, and no temporary file left behind
    monkeypatch.undo()
    write_json(path, {"old": True})
    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"new": True})
    assert path.read_text() == '{\n  "old": true\n}\n'
    assert os.listdir(tmp_path) == ["results.json"]


def test_a_process_killed_while_writing_leaves_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    write_text(path, "old\n")
    script = f"""
import os, signal
from dkp.runtime import atomic
def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)
atomic.os.replace = die
atomic.write_text({str(path)!r}, "new" * 100000)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert run.returncode == -9
    assert path.read_text() == "old\n"  # a stray .results.json.*.tmp may remain


def test_the_data_reaches_the_disk_before_the_name(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: synced.append(fd))
    write_text(tmp_path / "a.txt", "x")
    assert len(synced) == 1
    atomic.write_atomic(tmp_path / "b.idx", b"y", durable=False)  # a cache: no fsync
    assert len(synced) == 1
