"""The README's quickstart, run as a new user would (on a tiny dataset, for a few steps)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FAST = {
    "dkp-train": ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "data.prepare=null"],
    "dkp-eval": ["data.prepare=null"],
}
COMMON = ["data.num_workers=0", "data.persistent_workers=false"]
TINY = ["--videos-per-class", "2", "1", "1", "--min-duration", "2", "--max-duration", "8",
        "--workers", "1"]  # fmt: skip


def block(section: str, language: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    part = readme.split(f"## {section}\n", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", part, re.S).group(1)


def commands(text: str) -> list[list[str]]:
    joined = text.replace("\\\n", " ")
    lines = [line.split("#", 1)[0].strip() for line in joined.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("make ")]


@pytest.mark.slow
def test_the_quickstart_runs_as_written(tmp_path):
    env = {**os.environ, "DKP_ROOT": str(tmp_path), "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    for argv in commands(block("Quickstart", "bash")):
        name = argv[0]
        if name == "dkp-synthetic":
            argv += TINY
        if name == "dkp-predict":
            shutil.copy(next((tmp_path / "data" / "synthetic" / "videos").glob("*.mp4")),
                        tmp_path / "my_video.mp4")  # fmt: skip
        argv += FAST.get(name, []) + (COMMON if name in FAST else [])
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stderr[-3000:]}"
    assert (tmp_path / "my_video.png").is_file()
    python = block("Classify your own videos from Python", "python")
    done = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "my_video.mp4 [(" in done.stdout and "GFLOPs" in done.stdout
