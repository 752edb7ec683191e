"""The networks-alone tables of ``make bench``, also made from rows saved as JSON."""

from __future__ import annotations

from benchmarks.run import models_tables


def _row(device: str, model: str, speeds: dict[str, float]) -> dict:
    return {
        "arch": "paper",
        "device": device,
        "model": model,
        "frames": "20 x 224",
        "gflops": 81.7,
        "videos_s": speeds,
        "latency_ms": 1e3 / speeds["1"],
        "largest_batch": max(int(b) for b in speeds),
        "gflops_s": 1.0,
        "x_teacher": 1.0,
        "gflops_ratio": 1.0,
    }


def test_one_table_per_device_with_a_column_per_batch_size():
    rows = [
        _row("cpu", "teacher-only", {"1": 0.16}),
        _row("cuda", "teacher-only", {"1": 258.0, "32": 379.0, "128": 375.5}),
        _row("cuda", "DKP", {"1": 152.0, "128": 1044.0}),
    ]
    cpu, gpu = models_tables(rows)
    assert "on the CPU, " in cpu and "videos/s @32" not in cpu
    assert "on the GPU:" in gpu
    header, _, teacher, dkp = gpu.strip().splitlines()[2:]
    assert [h.strip() for h in header.split("|")[5:8]] == [
        "videos/s @1",
        "videos/s @32",
        "videos/s @128",
    ]
    assert [c.strip() for c in teacher.split("|")[5:8]] == ["258", "379", "376"]
    assert [c.strip() for c in dkp.split("|")[5:8]] == ["152", "-", "1044"]
