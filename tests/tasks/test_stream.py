"""dkp-predict --stream: a generated video through a pipe, predictions as its frames arrive."""

from __future__ import annotations

import os
import re
import threading
import time
import tracemalloc
from itertools import islice
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from dkp.cli.predict import main as predict_main
from dkp.data.batch import Batch
from dkp.data.decoding import FrameRequest, PyAVReader
from dkp.data.streaming import LiveSource
from dkp.lightning import DKPModule, EarlyExitModule, FrameClassifierModule, load_module
from dkp.tasks.stream import stream_updates
from tests.moving_video import encode, moving_pattern

CLASSES, FPS, WINDOW = 4, 10, 4.0
SIZES = {"student": 16, "teacher": 24}


def frame_net(name: str) -> dict:
    backbone = {"_target_": "dkp.models.backbones.build_backbone", "name": name,
                "base_width": 4, "layers": [1, 1, 1, 1]}  # fmt: skip
    return {"_target_": "dkp.models.frame_net.FrameNet", "num_classes": CLASSES,
            "backbone": backbone}  # fmt: skip


def save(module: pl.LightningModule, path: Path) -> Path:
    torch.manual_seed(0)
    for p in module.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": pl.__version__}, path)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def dkp_ckpt(tmp_path_factory) -> Path:
    """DKP at 16 and 24 px, trained sampling unrecorded: n_t = 4, n_s = 16 per window."""
    module = DKPModule(frame_net("resnet18"), frame_net("resnet50"), SIZES["student"],
                       SIZES["teacher"], freeze_teacher=False,
                       propagation={"dim": 16, "heads": 2}, ensemble={"hidden": 8})  # fmt: skip
    return save(module, tmp_path_factory.mktemp("stream") / "dkp.ckpt")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, bytes]:
    """20 s of a moving pattern at 10 fps, MPEG-TS (a format a pipe can carry)."""
    path = tmp_path_factory.mktemp("stream") / "moving.ts"
    data = encode(moving_pattern(20 * FPS), FPS, path, container="mpegts", codec="mpeg2video")
    return path, data


def piped(data: bytes) -> str:
    """``data`` written into a pipe by a thread; the ``pipe:N`` URL that reads it."""
    read, write = os.pipe()

    def feed() -> None:
        try:
            with os.fdopen(write, "wb") as f:
                f.write(data)
        except BrokenPipeError:  # the reader stopped early
            pass

    threading.Thread(target=feed, daemon=True).start()
    return f"pipe:{read}"


def test_dkp_predicts_over_a_sliding_window_as_the_pipe_delivers(dkp_ckpt, video):
    path, data = video
    module = load_module(dkp_ckpt)
    updates = list(stream_updates(module, LiveSource(piped(data)).frames(), WINDOW, top_k=2))
    # a teacher frame every 4 s / n_t = 1 s gives an update: 20 of them, at 0, 1, ..., 19 s
    assert [u.time for u in updates] == pytest.approx(list(range(20)))
    counts = [(len(u.frame_times["student"]), len(u.frame_times["teacher"])) for u in updates]
    assert counts[:3] == [(1, 1), (5, 2), (9, 3)] and set(counts[4:]) == {(16, 4)}
    # GMACs so far: each sampled frame through its network once, one fusion per update
    cost = module.cost_model()
    sampled: dict[str, set[float]] = {"student": set(), "teacher": set()}
    fusions = 0.0
    for u, (n_s, n_t) in zip(updates, counts, strict=True):
        for name, times in u.frame_times.items():
            sampled[name].update(times)
        fusions += cost.fusion(n_s, n_t)
        expected = (len(sampled["student"]) * cost.student_frame
                    + len(sampled["teacher"]) * cost.teacher_frame + fusions)  # fmt: skip
        assert u.gflops == pytest.approx(expected, rel=1e-9)
        assert 0 < u.latency < 5 and len(u.top) == 2
    # each prediction is DKP on those frames, read from the file, times relative to the window
    reader = PyAVReader()
    for u in (updates[2], updates[-1]):
        times = {name: torch.tensor([t]) for name, t in u.frame_times.items()}
        requests = [
            FrameRequest(tuple(t[0].tolist()), SIZES[n], SIZES[n]) for n, t in times.items()
        ]
        clips = dict(zip(times, reader.read(path, requests), strict=True))
        pixels = {n: torch.from_numpy(c).permute(0, 3, 1, 2)[None] for n, c in clips.items()}
        batch = Batch(
            target=torch.zeros(1, CLASSES),
            duration=torch.tensor([WINDOW]),
            video_ids=["window"],
            student_frames=pixels["student"],
            student_times=times["student"] - u.window[0],
            teacher_frames=pixels["teacher"],
            teacher_times=times["teacher"] - u.window[0],
        )
        with torch.no_grad():
            torch.testing.assert_close(u.probs, module.net(batch).video_probs[0], atol=1e-5, rtol=0)
        assert u.top[0][1] == pytest.approx(u.probs.max().item(), abs=1e-6)


def test_a_frame_classifier_averages_its_window_at_every_frame_it_samples(tmp_path, video):
    path, data = video
    ckpt = save(FrameClassifierModule(frame_net("resnet18"), role="student", input_size=16),
                tmp_path / "student.ckpt")  # fmt: skip
    module = load_module(ckpt)
    updates = list(stream_updates(module, LiveSource(piped(data)).frames(), WINDOW))
    # 16 frames a window of 4 s: one every 0.25 s, i.e. the first frame at or after each
    # multiple of 0.25 s at 10 fps (0.0, 0.3, 0.5, 0.8, 1.0, ...), each an update
    assert len(updates) == 80
    assert [u.time for u in updates[:5]] == pytest.approx([0.0, 0.3, 0.5, 0.8, 1.0])
    assert [len(u.frame_times["student"]) for u in updates] == [min(i + 1, 16) for i in range(80)]
    last = updates[-1]
    assert last.gflops == pytest.approx(80 * module.cost_model().student_frame)
    (clip,) = PyAVReader().read(path, [FrameRequest(tuple(last.frame_times["student"]), 16, 16)])
    with torch.no_grad():
        logits = module.net(torch.from_numpy(clip).permute(0, 3, 1, 2)[None]).logits
    torch.testing.assert_close(last.probs, logits[0].softmax(-1).mean(0), atol=1e-6, rtol=0)


def test_early_exit_answers_each_window_at_its_first_confident_checkpoint(tmp_path, video):
    _, data = video
    backbone = frame_net("resnet50")["backbone"]
    net = {"_target_": "dkp.models.early_exit.EarlyExitNet", "num_classes": CLASSES,
           "num_frames": 8, "groups": 4, "route": [[0, 2], [1, 3], [2, 3], [3, 3]],
           "backbone": backbone}  # fmt: skip
    module = load_module(save(EarlyExitModule(net, input_size=24), tmp_path / "ee.ckpt"))
    route = module.route.gflops
    for threshold, checkpoint, last_slot in ((0.0, 1, 4), (1.1, 4, 7)):
        # the first 9 s of the stream: 2 windows of 4 s answered, the third not yet
        frames = islice(LiveSource(piped(data)).frames(), 9 * FPS)
        updates = list(stream_updates(module, frames, WINDOW, threshold=threshold))
        # 8 slots a window at the centres of 0.5 s segments; group 0 is slots 0 and 4, so a
        # window stops at checkpoint 1 once slot 4 (at 2.25 s) has arrived
        assert [u.checkpoint for u in updates] == [checkpoint] * 2
        assert [u.time for u in updates] == pytest.approx(
            [4 * w + (last_slot + 0.5) * 0.5 + 0.05 for w in range(2)]
        )
        assert [u.gflops for u in updates] == pytest.approx(
            [(w + 1) * route[checkpoint - 1] for w in range(2)]
        )
        assert [len(u.frame_times["teacher"]) for u in updates] == [2 * checkpoint] * 2


def test_the_command_prints_one_line_per_prediction(dkp_ckpt, video, capsys):
    _, data = video
    args = ["--ckpt", str(dkp_ckpt), "--stream", piped(data), "--window", "4", "--top-k", "2"]
    assert predict_main([*args, "--max-updates", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pattern = (r"\[ +(\d+\.\d\d) s\] class_\d \d\.\d{3}, class_\d \d\.\d{3} \| (\d+) student "
               r"\+ (\d+) teacher frames \| \d+\.\d{4} GFLOPs so far \| \d+\.\d ms")  # fmt: skip
    parsed = [re.fullmatch(pattern, line) for line in lines]
    assert len(lines) == 3 and all(parsed), lines
    assert [(m[1], m[2], m[3]) for m in parsed] == [("0.00", "1", "1"), ("1.00", "5", "2"),
                                                    ("2.00", "9", "3")]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:  # neither files nor a stream
        predict_main(["--ckpt", str(dkp_ckpt)])
    assert exit_.value.code == 2
    assert predict_main(["--ckpt", str(dkp_ckpt), "--stream", "/nonexistent.ts"]) == 1


@pytest.mark.slow
def test_memory_stays_flat_over_a_long_stream(dkp_ckpt):
    """4 minutes at 10 fps (2,400 frames of 160x120): after the first minute neither Python
    objects nor the process grow (3 MB and 0.03 MB measured); keeping the decoded pictures
    would add 69 MB."""
    data = encode(moving_pattern(2400, 120, 160), FPS, container="mpegts", codec="mpeg2video")
    module = load_module(dkp_ckpt)
    rss, traced = [], []
    tracemalloc.start()
    try:
        for u in stream_updates(module, LiveSource(piped(data)).frames(), WINDOW):
            if u.time >= 60:
                rss.append(_rss_mb())
                traced.append(tracemalloc.get_traced_memory()[0] / 2**20)
    finally:
        tracemalloc.stop()
    assert len(rss) == 180  # one update a second from 60 s to 239 s
    assert max(rss) - rss[0] < 16, rss
    assert max(traced) - traced[0] < 0.5, traced


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_file_plays_at_its_own_pace_when_asked(video):
    path, _ = video
    began = time.perf_counter()
    for frame in LiveSource(str(path), realtime=True).frames():
        if frame.time >= 1.0:
            break
    assert time.perf_counter() - began >= 0.95
