"""``dkp-data``: help without torch, check then prepare a dataset from a data config, and
mistakes as one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from dkp.cli.data import main

PROBE = """
import sys
from dkp.cli.data import main
try:
    main(["--help"])
except SystemExit:
    pass
print("torch imported:", "torch" in sys.modules)
"""


def test_help_shows_examples_without_importing_torch(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert run.stdout.count("  dkp-data check ") >= 2
    assert run.stdout.count("  dkp-data prepare ") >= 2
    assert "torch imported: False" in run.stdout


def test_the_console_script_is_this_module():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["dkp-data"] == "dkp.cli.data:main"


@pytest.fixture
def dataset(tiny_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    broken = sorted((root / "videos").glob("*.mp4"))[0]
    broken.write_bytes(b"")
    return root, broken


def config(root, tmp_path) -> list[str]:
    return [
        "data=synthetic",
        f"data.root={root}",
        "data.prepare=null",
        "data.num_classes=8",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]


def test_check_then_prepare_then_nothing_left_to_do(dataset, tmp_path, capsys):
    root, broken = dataset
    report = tmp_path / "check.json"
    args = ["--workers", "1", "--no-progress"]
    assert main(["check", *config(root, tmp_path), "--report", str(report), *args]) == 0
    out = capsys.readouterr().out
    assert f"{broken}: zero_length: the file is empty" in out
    assert "32 videos listed: 31 ok, 0 with warnings, 1 with errors (0 missing)" in out
    assert f"data.exclude_report={report}" in out
    saved = json.loads(report.read_text())
    assert saved["summary"]["error"] == 1 and len(saved["videos"]) == 32

    copy = tmp_path / "copy"
    prepare = ["prepare", *config(root, tmp_path), f"data.exclude_report={report}"]
    prepare += ["--out", str(copy), "--short-side", "32", *args]
    assert main(prepare) == 0
    out = capsys.readouterr().out
    assert "31 renditions made, 0 already there, 0 failed" in out
    assert f"read it with: data.prepared={copy}" in out
    manifest = json.loads((copy / "manifest.json").read_text())
    assert len(manifest["videos"]) == 31 and manifest["settings"]["short_side"] == 32
    assert all((copy / v["rendition"]).is_file() for v in manifest["videos"].values())

    assert main(prepare) == 0
    assert "0 renditions made, 31 already there" in capsys.readouterr().out
    assert main(["check", *config(root, tmp_path), "--report", str(report), *args]) == 0
    assert "0 files checked now, 32 unchanged." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=activitynet", "data.root=/no/such/dataset"], "data.root: /no/such/dataset"),
        (["data=nonexistent"], "nonexistent"),
        (["data.exclude_report=/no/report.json"], "data.exclude_report: /no/report.json"),
        (["data.reader.threads=many"], "data.reader.threads: 'many' is not an int"),
    ],
)
def test_mistakes_end_with_one_line_naming_them(overrides, message, tmp_path, capsys):
    assert main(["check", *overrides, "--report", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dkp-data: error: ") and message in err.splitlines()[0]
