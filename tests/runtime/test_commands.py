"""A pipeline's commands: forked or fresh, the same output in the log and the same status."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from dkp.runtime.commands import CommandRunner, can_fork

MODULE = """
import os, sys
print("argv", sys.argv[1:], "name", __name__, "path0", sys.path[0] == os.getcwd())
print("to stderr", file=sys.stderr)
if sys.argv[1:] == ["fail"]:
    raise RuntimeError("broken input")
if sys.argv[1:] == ["exit"]:
    sys.exit(3)
os.environ["DKP_CHILD_WAS_HERE"] = "1"
"""

SCRIPT = """
import sys
from pathlib import Path
print("script", sys.argv, Path(sys.path[0]).name, __name__)
"""

RUNNERS = [pytest.param(False, id="subprocess")]
if can_fork():
    RUNNERS.append(pytest.param(True, id="forked"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "fake_tool.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "job.py").write_text(textwrap.dedent(SCRIPT))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("fork", RUNNERS)
def test_a_module_runs_as_python_m_would(workdir: Path, fork: bool) -> None:
    log = workdir / "ok.log"
    status = CommandRunner(fork)([sys.executable, "-m", "fake_tool", "a", "b"], log)
    assert status == 0
    assert sorted(log.read_text().splitlines()) == [
        "argv ['a', 'b'] name __main__ path0 True",
        "to stderr",
    ]


@pytest.mark.parametrize("fork", RUNNERS)
def test_exit_status_and_traceback_reach_the_caller_and_the_log(workdir: Path, fork: bool) -> None:
    runner = CommandRunner(fork)
    assert runner([sys.executable, "-m", "fake_tool", "exit"], workdir / "exit.log") == 3
    assert runner([sys.executable, "-m", "fake_tool", "fail"], workdir / "fail.log") == 1
    text = (workdir / "fail.log").read_text()
    assert "argv ['fail']" in text and text.rstrip().endswith("RuntimeError: broken input")


@pytest.mark.parametrize("fork", RUNNERS)
def test_a_script_runs_as_python_script_would(workdir: Path, fork: bool) -> None:
    log = workdir / "script.log"
    assert CommandRunner(fork)([sys.executable, "scripts/job.py", "--x", "1"], log) == 0
    assert log.read_text() == "script ['scripts/job.py', '--x', '1'] scripts __main__\n"


@pytest.mark.parametrize("fork", RUNNERS)
def test_the_command_changes_nothing_in_the_caller(workdir: Path, fork: bool) -> None:
    CommandRunner(fork)([sys.executable, "-m", "fake_tool"], workdir / "env.log")
    assert "DKP_CHILD_WAS_HERE" not in os.environ
    assert sys.argv[0] != "fake_tool"


def test_other_programs_run_as_subprocesses(workdir: Path) -> None:
    log = workdir / "sh.log"
    assert CommandRunner(fork=can_fork())(["sh", "-c", "echo out; echo err >&2; exit 2"], log) == 2
    assert log.read_text().split() == ["out", "err"]
