"""A few training steps on each official format's tiny fixture, through the real data configs."""

from __future__ import annotations

import json

import pytest

from dkp.runtime.jobs import run_job
from dkp.tasks.train import train
from tests.conftest import compose_config
from tests.data.annotations.layouts import CLASSES, LAYOUTS
from tests.tasks.test_train_eval_predict import STEPS


@pytest.mark.parametrize("data", sorted(LAYOUTS))
def test_teacher_trains_on_each_format(data, tmp_path):
    root = LAYOUTS[data](tmp_path / "data")
    run_dir = tmp_path / "run"
    cfg = compose_config(
        "train",
        [
            f"data={data}",
            f"data.root={root}",
            f"data.num_classes={len(CLASSES)}",
            "experiment=teacher",
            *STEPS,
        ],
        run_dir,
    )
    assert cfg.data.metric == "top1"
    results = run_job(cfg, train)
    on_disk = json.loads((run_dir / "results.json").read_text())
    for key in ("val/top1", "test/top1", "test/top5", "test/mAP", "train/loss"):
        assert 0.0 <= on_disk["metrics"][key] < 10.0, key
    assert on_disk["metrics"]["test/top5"] == 1.0  # 3 classes: every label is in the top 5
    assert results.cost.frames_teacher == 2.0  # sampling.n_t=2
