"""A non-editable install works from any directory: the configs ship inside the wheel."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*cmd: str | Path, cwd: Path, env: dict | None = None, stderr: bool = False) -> str:
    """The command's stdout (and its stderr after it, with ``stderr=True``); fails the test if it
    fails."""
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr if stderr else done.stdout


def source_copy(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones git does not ignore), so that building a
    wheel leaves no build/ in the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.mark.slow
def test_a_wheel_installed_without_e_trains_from_another_directory(tmp_path):
    wheels, source = tmp_path / "wheels", source_copy(tmp_path / "source")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source,
                cwd=tmp_path, stderr=True)  # fmt: skip
    assert "Warning" not in built  # e.g. setuptools' "Package 'dkp.conf' is absent"
    (wheel,) = wheels.glob("dkp-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    # the dependencies come from this environment (no download); dkp only from the wheel
    purelib = run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()"
                  "['purelib'])", cwd=tmp_path).strip()  # fmt: skip
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel,
        cwd=tmp_path)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DKP_ROOT")}
    where = run(venv / "bin" / "python", "-c", "import dkp; print(dkp.__file__)", cwd=elsewhere,
                env=env)  # fmt: skip
    assert Path(where.strip()).is_relative_to(venv)
    job = run(venv / "bin" / "dkp-train", "--cfg", "job", "experiment=teacher", cwd=elsewhere,
              env=env)  # fmt: skip
    assert "task_name: teacher" in job and "_target_: dkp.lightning.frame_classifier" in job
    assert "dkp-eval: score a checkpoint" in run(venv / "bin" / "dkp-eval", "--help",
                                                 cwd=elsewhere, env=env)  # fmt: skip
    assert list(elsewhere.iterdir()) == []  # composing wrote nothing
