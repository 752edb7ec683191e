"""The three training stages, eval, checkpoints and predict, through the real Hydra configs."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dkp.cli.predict import main as predict_main
from dkp.data.annotations.activitynet import load_activitynet
from dkp.data.dataset import VideoClipDataset, collate_clips
from dkp.data.views import Views
from dkp.lightning import DKPModule, FrameClassifierModule, load_module
from dkp.lightning.checkpoint import CheckpointError
from dkp.reporting.curves import draw_curves
from dkp.runtime.jobs import run_job
from dkp.tasks.evaluate import evaluate
from dkp.tasks.exits import exits
from dkp.tasks.train import train
from tests.conftest import compose_config

STEPS = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "data.batch_size=4",
    "data.eval_batch_size=8",
    "sampling.n_t=2",
    "sampling.ratio=2",
]


@pytest.fixture(scope="module")
def stages(tiny_dataset, tmp_path_factory):
    """Teacher, student and DKP trained a couple of steps each; their results."""
    out = {}
    for stage in ("teacher", "student"):
        run_dir = tmp_path_factory.mktemp(stage)
        cfg = compose_config("train", [f"experiment={stage}", *STEPS], run_dir, tiny_dataset)
        out[stage] = run_job(cfg, train)
    run_dir = tmp_path_factory.mktemp("dkp")
    cfg = compose_config(
        "train",
        [
            "experiment=dkp",
            f"model.teacher_ckpt={out['teacher'].last_checkpoint}",
            f"model.student_ckpt={out['student'].last_checkpoint}",
            *STEPS,
        ],
        run_dir,
        tiny_dataset,
    )
    out["dkp"] = run_job(cfg, train)
    return out


def test_each_stage_trains_and_writes_results(stages):
    for stage, kind in (
        ("teacher", "frame_classifier"),
        ("student", "frame_classifier"),
        ("dkp", "dkp"),
    ):
        results = stages[stage]
        assert results.kind == kind
        for key in ("val/mAP", "test/mAP", "test/top1", "test/top5", "train/loss"):
            assert 0.0 <= results.metrics[key] < 10.0, (stage, key)
        on_disk = json.loads(
            Path(results.best_checkpoint).parents[1].joinpath("results.json").read_text()
        )
        assert on_disk["metrics"] == pytest.approx(results.metrics)
        assert Path(results.last_checkpoint).is_file()
    assert stages["teacher"].cost.frames_teacher == 2.0
    assert stages["student"].cost.frames_student == 4.0
    assert stages["dkp"].cost.gflops > stages["teacher"].cost.gflops


def test_checkpoint_round_trip_gives_identical_predictions(stages, tiny_dataset):
    path = stages["dkp"].last_checkpoint
    a = load_module(path).eval()
    b = DKPModule.load_from_checkpoint(path, weights_only=True).eval()
    assert isinstance(a, DKPModule)
    assert a.hparams["classes"][0] == "Blue flash" and len(a.hparams["classes"]) == 8
    records = load_activitynet(
        tiny_dataset / "activity_net.v1-3.min.json", tiny_dataset / "videos", ["validation"]
    ).records
    dataset = VideoClipDataset(records[:4], _sampling(a), _reader(), 32, 64)
    batch = collate_clips([dataset[i] for i in range(4)], 8)
    with torch.no_grad():
        torch.testing.assert_close(a.video_probs(batch), b.video_probs(batch), rtol=0, atol=0)
    teacher = FrameClassifierModule.load_from_checkpoint(stages["teacher"].last_checkpoint)
    # The DKP checkpoint carries the teacher it was trained with, unchanged (it was frozen).
    for key, value in teacher.net.state_dict().items():
        torch.testing.assert_close(a.net.teacher.state_dict()[key], value)


def _sampling(module):
    return module.sampling()


def _reader():
    from dkp.data.decoding import PyAVReader

    return PyAVReader()


def test_eval_under_another_sampling(stages, tiny_dataset, tmp_path):
    cfg = compose_config(
        "eval",
        [
            f"ckpt_path={stages['dkp'].last_checkpoint}",
            "sampling=fixed",
            "sampling.r_t=2.0",
            "sampling.ratio=4",
            "split=val",
        ],
        tmp_path,
        tiny_dataset,
    )
    results = run_job(cfg, evaluate)
    assert results.split == "val" and results.sampling["strategy"] == "fixed"
    assert results.num_videos == 8
    assert results.cost.gflops_std > 0  # counts vary with duration
    assert results.cost.frames_student == pytest.approx(4 * results.cost.frames_teacher, rel=0.2)
    assert (tmp_path / "results.json").is_file()


def test_dynamic_dkp_with_a_frame_selector(stages, tiny_dataset, tmp_path):
    """dkp-exits fits the selector on the validation segments, samples 4 candidates, runs at
    most the 2 teacher frames DKP was trained with, and counts the selector's cost."""
    overrides = [f"ckpt_path={stages['dkp'].last_checkpoint}", "timing_repeats=1",
                 "frame_selector.enabled=true", "frame_selector.candidates=4",
                 "frame_selector.epochs=2", "budget_fraction=[0.9,1.0]"]  # fmt: skip
    points = run_job(compose_config("exits", overrides, tmp_path, tiny_dataset), exits)
    full = points["01"]
    assert full.series == "Dynamic DKP" and full.sampling["n_t"] == 4
    assert full.cost.frames_teacher == 2.0 and full.exits.counts[-1] == full.num_videos
    plain = module_cost(stages["dkp"].last_checkpoint, n_s=4, n_t=2)
    assert plain < full.cost.gflops < 1.1 * plain  # the selector: a few % on top
    table = (tmp_path / "checkpoints.md").read_text().splitlines()
    assert [row.split(" | ")[1] for row in table[2:10]] == [
        "1.0, 0.0",
        "2.0, 0.0",
        "3.0, 0.0",
        "4.0, 0.0",
        "4.0, 1.0",
        "4.0, 1.0",
        "4.0, 2.0",
        "4.0, 2.0",
    ]  # the 4 student frames in 4 steps, then 4 teacher steps over the best 2 candidates
    scored = [row.strip("| ").split(" | ")[4:] for row in table[2:]]
    assert all(re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", c) for c in sum(scored, []))


def test_the_frame_selector_can_be_fitted_on_the_train_split(stages, tiny_dataset, tmp_path):
    """It reads pixels alone, so the models' train split may fit it: another selector, so
    other teacher frames, while thresholds and the stopping score stay fitted on val."""
    overrides = [f"ckpt_path={stages['dkp'].last_checkpoint}", "timing=false",
                 "frame_selector.enabled=true", "frame_selector.candidates=4",
                 "frame_selector.epochs=2", "budget_fraction=0.9"]  # fmt: skip
    scores = {}
    for split in ("val", "train"):
        out = tmp_path / split
        cfg = compose_config("exits", [*overrides, f"frame_selector.split={split}"], out,
                             tiny_dataset)  # fmt: skip
        point = run_job(cfg, exits)
        assert point.exits.select_split == "val"
        scores[split] = np.load(out / "scores.npz")["probs"]
    assert scores["val"].shape == scores["train"].shape
    assert not np.allclose(scores["val"], scores["train"])


def module_cost(ckpt: str, n_s: int, n_t: int) -> float:
    return load_module(ckpt).cost_model().video(n_s, n_t)


def test_results_count_the_videos_scored(stages, tiny_dataset, tmp_path):
    """With limit_test_batches, results say how many videos were scored, and their cost."""
    ckpt = stages["teacher"].last_checkpoint
    cfg = compose_config(
        "eval",
        [
            f"ckpt_path={ckpt}",
            "trainer.limit_test_batches=1",
            "data.eval_batch_size=3",
            *STEPS[-2:],
        ],
        tmp_path,
        tiny_dataset,
    )
    results = run_job(cfg, evaluate)
    assert results.num_videos == 3 and results.cost.frames_teacher == 2.0
    assert results.cost.gflops == pytest.approx(load_module(ckpt).cost_model().video(0, 2))


def test_eval_scores_the_network_in_eval_mode(stages, tiny_dataset, tmp_path):
    """dkp-eval's predictions callback counts GFLOPs after the first batch; every later batch
    must still be scored by the eval-mode network: per-video scores equal the checkpoint's own
    forward pass and the metrics those of a run without the callback."""
    ckpt = stages["dkp"].last_checkpoint
    runs = {}
    for name, extra in (("with", []), ("without", ["~callbacks.predictions"])):
        cfg = compose_config(
            "eval",
            [f"ckpt_path={ckpt}", "split=val", "data.eval_batch_size=2", *STEPS[-2:], *extra],
            tmp_path / name,
            tiny_dataset,
        )
        runs[name] = run_job(cfg, evaluate).metrics
    assert runs["with"] == pytest.approx(runs["without"], abs=1e-6)
    assert not (tmp_path / "without" / "predictions.jsonl").exists()

    module = load_module(ckpt).eval()
    records = load_activitynet(
        tiny_dataset / "activity_net.v1-3.min.json", tiny_dataset / "videos", ["validation"]
    ).records
    dataset = VideoClipDataset(records, _sampling(module), _reader(), 32, 64)
    with torch.no_grad():
        probs = module.video_probs(collate_clips([dataset[i] for i in range(len(records))], 8))
    lines = (tmp_path / "with" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(records) == 8
    for row, p in zip(map(json.loads, lines), probs, strict=True):
        assert row["top"][0][1] == pytest.approx(p.max().item(), abs=1e-5)


def test_dkp_without_teacher_checkpoint_is_a_clear_error(stages, tiny_dataset, tmp_path):
    cfg = compose_config(
        "train", ["experiment=dkp", "model.teacher_ckpt=null", *STEPS], tmp_path, tiny_dataset
    )
    with pytest.raises(CheckpointError, match="teacher_ckpt is not set"):
        train(cfg)
    cfg = compose_config(
        "train",
        ["experiment=dkp", f"model.teacher_ckpt={tmp_path}/nope.ckpt", *STEPS],
        tmp_path,
        tiny_dataset,
    )
    with pytest.raises(CheckpointError, match="nope.ckpt"):
        train(cfg)
    cfg = compose_config(
        "train",
        ["experiment=dkp", f"model.teacher_ckpt={stages['dkp'].last_checkpoint}", *STEPS],
        tmp_path,
        tiny_dataset,
    )
    with pytest.raises(CheckpointError, match="'dkp' checkpoint; expected a 'frame_classifier'"):
        train(cfg)


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_module(tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.ckpt"):
        load_module(garbage)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    crafted = tmp_path / "crafted.ckpt"
    crafted.write_bytes(pickle.dumps({"state_dict": {}, "hyper_parameters": Exploit()}))
    with pytest.raises(CheckpointError, match="weights_only"):
        load_module(crafted)
    assert not marker.exists()


def test_predict_cli(stages, tiny_dataset, tmp_path, capsys):
    videos = sorted((tiny_dataset / "videos").glob("*.mp4"))[:2]
    out_json, out_png = tmp_path / "pred.json", tmp_path / "fig.png"
    code = predict_main(
        [
            "--ckpt",
            stages["dkp"].last_checkpoint,
            str(videos[0]),
            "--top-k",
            "3",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert videos[0].name in printed
    predictions = json.loads(out_json.read_text())
    assert len(predictions[0]["top"]) == 3
    assert predictions[0]["gflops"] == pytest.approx(
        load_module(stages["dkp"].last_checkpoint).cost_model().video(4, 2)
    )
    scores = [score for _, score in predictions[0]["top"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
    assert set(predictions[0]["frame_probs"]) == {"student", "teacher", "propagated", "ensemble"}
    assert len(predictions[0]["frame_probs"]["ensemble"]) == 4  # n_s = ratio 2 x n_t 2
    assert out_png.stat().st_size > 5000
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    code = predict_main(["--ckpt", stages["teacher"].last_checkpoint, str(broken), str(videos[1])])
    assert code == 1
    printed = capsys.readouterr().out
    assert "broken.mp4: SKIPPED" in printed and videos[1].name in printed
    assert predict_main(["--ckpt", str(tmp_path / "none.ckpt"), str(videos[0])]) == 2


def test_eval_over_several_views(stages, tiny_dataset, tmp_path):
    """dkp-eval views.clips=2 views.crops=3: each video scored on 6 views, averaged; its cost
    is 6 single views'; results say so, in a series of their own."""
    ckpt = stages["dkp"].last_checkpoint
    common = [f"ckpt_path={ckpt}", "split=val", *STEPS[-2:]]
    single = run_job(compose_config("eval", common, tmp_path / "1", tiny_dataset), evaluate)
    views = ["views.clips=2", "views.crops=3"]
    multi = run_job(compose_config("eval", common + views, tmp_path / "6", tiny_dataset), evaluate)
    assert (single.views, multi.views) == (1, 6) and multi.num_videos == single.num_videos == 8
    assert multi.cost.gflops == pytest.approx(6 * single.cost.gflops)
    assert (multi.cost.frames_student, multi.cost.frames_teacher) == (6 * 4, 6 * 2)
    assert single.series is None and multi.series == "DKP adaptive-2, 2 clips x 3 crops"
    assert json.loads((tmp_path / "6" / "results.json").read_text())["views"] == 6
    curves = draw_curves([tmp_path / "1", tmp_path / "6"], tmp_path / "figures", split="val")
    assert sorted(p.series for p in curves.points) == [
        "DKP adaptive-2",
        "DKP adaptive-2, 2 clips x 3 crops",
    ]

    module = load_module(ckpt).eval()
    records = load_activitynet(
        tiny_dataset / "activity_net.v1-3.min.json", tiny_dataset / "videos", ["validation"]
    ).records
    dataset = VideoClipDataset(records, _sampling(module), _reader(), 32, 64, views=Views(2, 1))
    batch = collate_clips([dataset[i] for i in range(len(records))], 8)
    with torch.no_grad():  # the frames are square: the 3 crops are the whole frame
        probs = (module.video_probs(batch) + module.video_probs(batch.extra_views[0])) / 2
    lines = (tmp_path / "6" / "predictions.jsonl").read_text().splitlines()
    for row, p in zip(map(json.loads, lines), probs, strict=True):
        assert row["top"][0][1] == pytest.approx(p.max().item(), abs=1e-5)
        assert row["gflops"] == pytest.approx(6 * module.cost_model().video(4, 2))
