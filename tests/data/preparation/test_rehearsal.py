"""A tiny `make rehearsal`: generated broken and missing videos are named by the check, left out
of the copy, and one arch=paper epoch loads every other training video from the copy."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_a_tiny_rehearsal_checks_prepares_and_loads_an_epoch(tmp_path):
    from experiments.rehearsal import main

    args = ["--out", str(tmp_path), "--videos", "12", "--length-scale", "0.03", "--height", "144"]
    assert main([*args, "--workers", "2"]) == 0
    results = json.loads((tmp_path / "rehearsal.json").read_text())
    kinds = results["dataset"]["kinds"]
    broken = sum(n for kind, n in kinds.items() if kind not in ("ok", "missing"))
    assert results["check"]["counts"] == {
        "videos": 12,
        "ok": kinds["ok"],
        "warning": 0,
        "error": broken + kinds["missing"],
        "missing": kinds["missing"],
    }
    assert (results["prepare"]["made"], results["prepare"]["failed"]) == (kinds["ok"], 0)
    epoch = results["epoch"]
    annotations = json.loads((tmp_path / "data" / "activity_net.v1-3.min.json").read_text())
    report = json.loads((tmp_path / "check.json").read_text())
    good = {v["ids"][0] for v in report["videos"] if v["status"] == "ok"}
    training = {k for k, v in annotations["database"].items() if v["subset"] == "training"}
    assert epoch["samples"] == len(good & training) and epoch["failed"] == []
    assert "Extrapolated to 20,000 videos" in (tmp_path / "rehearsal.md").read_text()
