"""dkp-synthetic: the command writes, skips an up-to-date dataset, and refuses bad values."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from dkp.cli.synthetic import main
from dkp.data.synthetic.config import ANNOTATION_NAME, MANIFEST_NAME


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_cli_writes_a_dataset_and_skips_an_up_to_date_one(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--seed", "3", "--videos-per-class", "1", "1", "0"]
    argv += ["--fine-classes", "1", "--brief-classes", "2", "--coarse-classes", "0"]
    argv += ["--min-duration", "2"]
    argv += ["--max-duration", "3", "--workers", "1"]
    assert main(argv) == 0
    assert str(out / ANNOTATION_NAME) in capsys.readouterr().out
    data = json.loads((out / ANNOTATION_NAME).read_text())
    assert len(data["database"]) == 6
    assert Counter(e["subset"] for e in data["database"].values()) == {
        "training": 3,
        "validation": 3,
    }
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["config"]["seed"] == 3
    assert manifest["config"]["videos_per_class"] == [1, 1, 0]
    before = mtimes(out)
    assert main(argv) == 0
    assert mtimes(out) == before
    assert main([*argv, "--force"]) == 0
    assert mtimes(out)[MANIFEST_NAME] != before[MANIFEST_NAME]
    written = mtimes(out)
    capsys.readouterr()
    other = [a if a != "3" else "4" for a in argv]  # another seed
    assert main(other) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"dkp-synthetic: error: {out} holds files that are not the synthetic")
    assert f"seed: the dataset in {out} was written with 3, the config asks for 4" in error
    assert mtimes(out) == written
    assert main([*other, "--force"]) == 0
    assert json.loads((out / MANIFEST_NAME).read_text())["config"]["seed"] == 4
    assert main(["--out", str(out), "--fine-classes", "99"]) == 2


def test_cli_sets_how_often_brief_events_flash(tmp_path, capsys):
    out = tmp_path / "rare"
    argv = ["--out", str(out), "--videos-per-class", "1", "0", "0", "--fine-classes", "0"]
    argv += ["--brief-classes", "1", "--coarse-classes", "0", "--min-duration", "2"]
    argv += ["--max-duration", "2", "--workers", "1", "--event-spacing", "2.5"]
    argv += ["--event-duration", "0.2"]
    assert main(argv) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert (manifest["config"]["event_spacing"], manifest["config"]["event_duration"]) == (2.5, 0.2)
    assert main([*argv[:-4], "--event-spacing", "0.1"]) == 2  # flashes would merge
    assert "event_spacing must exceed event_duration" in capsys.readouterr().err


def test_module_runs_as_a_script(tmp_path):
    out = tmp_path / "m"
    argv = ["--out", str(out), "--videos-per-class", "1", "0", "0", "--fine-classes", "1"]
    argv += ["--brief-classes", "0", "--coarse-classes", "0", "--min-duration", "2"]
    argv += ["--max-duration", "2", "--workers", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "dkp.cli.synthetic", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((out / "videos").glob("v_*.mp4"))) == 1
