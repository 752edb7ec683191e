import csv
import json
from types import SimpleNamespace

import pytest
import torch

from dkp.cli.predict import main as predict_main
from dkp.data.annotations.activitynet import load_activitynet
from dkp.data.batch import Batch
from dkp.evaluation.activitynet_submission import load_ground_truth, score_submission
from dkp.evaluation.predictions import PredictionWriter
from dkp.lightning import FrameClassifierModule, load_module
from dkp.runtime.jobs import run_job
from dkp.tasks.evaluate import evaluate
from dkp.tasks.train import train
from tests.conftest import compose_config
from tests.tasks.test_train_eval_predict import STEPS


def read_csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_dataset, tmp_path_factory):
    """A teacher trained two steps on the tiny ActivityNet-format dataset."""
    run_dir = tmp_path_factory.mktemp("teacher")
    cfg = compose_config(
        "train", ["experiment=teacher", "test=false", *STEPS], run_dir, tiny_dataset
    )
    return run_job(cfg, train).last_checkpoint


def test_eval_writes_per_video_predictions_and_a_scorable_submission(
    teacher_ckpt, tiny_dataset, tmp_path
):
    cfg = compose_config(
        "eval",
        [
            f"ckpt_path={teacher_ckpt}",
            "split=val",
            "sampling.n_t=2",
            "callbacks.predictions.top_k=8",  # every class: the submission holds all scores
            "callbacks.predictions.activitynet_submission=true",
        ],
        tmp_path,
        tiny_dataset,
    )
    results = run_job(cfg, evaluate)
    annotations = tiny_dataset / "activity_net.v1-3.min.json"
    records = load_activitynet(annotations, tiny_dataset / "videos", ["validation"]).records
    module = load_module(teacher_ckpt)
    per_video = module.cost_model().video(0, 2)  # a teacher alone, n_t = 2 frames

    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [row["video_id"] for row in rows] == [r.video_id for r in records]  # 8, in order
    for row in rows:
        assert set(row) == {"video_id", "top", "gflops", "exit_checkpoint"}
        assert len(row["top"]) == 8
        assert sorted(label for label, _ in row["top"]) == sorted(module.hparams["classes"])
        scores = [score for _, score in row["top"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1, 1e-4)
        assert row["gflops"] == pytest.approx(per_video) and row["exit_checkpoint"] is None
    assert results.cost.gflops == pytest.approx(per_video)

    table = read_csv(tmp_path / "predictions.csv")
    assert list(table[0]) == ["video_id", "gflops", "exit_checkpoint"] + [
        f"{kind}_{rank}" for rank in range(1, 9) for kind in ("label", "score")
    ]
    assert [line["video_id"] for line in table] == [row["video_id"] for row in rows]
    assert table[0]["label_1"] == rows[0]["top"][0][0]
    assert float(table[0]["score_1"]) == rows[0]["top"][0][1]
    assert {line["exit_checkpoint"] for line in table} == {""}  # no early exit for this model

    submission = json.loads((tmp_path / "submission.json").read_text())
    assert submission["version"] == "VERSION 1.3"
    assert set(submission["results"]) == {r.video_id for r in records}
    score = score_submission(tmp_path / "submission.json", annotations, "validation")
    truth = load_ground_truth(annotations, "validation")
    top3 = [{label for label, _ in row["top"][:3]} for row in rows]
    hits = sum(bool(top & truth[row["video_id"]]) for top, row in zip(top3, rows, strict=True))
    assert score.hit_at_k == hits / 8
    # With every class submitted, our mAP over the submission is the eval's val/mAP.
    assert score.non_interpolated_map == pytest.approx(results.metrics["val/mAP"], abs=1e-4)
    assert 0.0 <= score.interpolated_map <= 1.0


def test_predict_csv_has_the_same_columns(teacher_ckpt, tiny_dataset, tmp_path):
    videos = sorted((tiny_dataset / "videos").glob("*.mp4"))[:2]
    out = tmp_path / "pred.csv"
    assert (
        predict_main(["--ckpt", teacher_ckpt, *map(str, videos), "--top-k", "2", "--csv", str(out)])
        == 0
    )
    table = read_csv(out)
    assert list(table[0]) == ["video_id", "gflops", "exit_checkpoint", "label_1", "score_1",
                              "label_2", "score_2"]  # fmt: skip
    assert [line["video_id"] for line in table] == [str(v) for v in videos]
    module = load_module(teacher_ckpt)
    n_t = module.hparams["sampling"]["n_t"]  # sampled as in training
    assert n_t == 2 and float(table[0]["gflops"]) == pytest.approx(module.cost_model().video(0, 2))


def test_writer_hooks_rows_exit_checkpoints_and_formats(tmp_path):
    net = {
        "_target_": "dkp.models.frame_net.FrameNet",
        "num_classes": 3,
        "backbone": {"_target_": "dkp.models.backbones.build_backbone", "name": "resnet18",
                     "base_width": 4, "layers": [1, 1, 1, 1]},
    }  # fmt: skip
    module = FrameClassifierModule(net, role="student", input_size=16, classes=["a", "b", "c"])
    writer = PredictionWriter(tmp_path, top_k=2, formats=["csv"])
    trainer = SimpleNamespace(datamodule=None, sanity_checking=False)
    batch = Batch(
        target=torch.zeros(2, 3),
        duration=torch.ones(2),
        video_ids=["x1", "x2"],
        student_mask=torch.tensor([[True, True, True], [True, True, False]]),
    )
    outputs = {
        "probs": torch.tensor([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]),
        "costs": module.video_costs(batch),
        "exit": torch.tensor([0, 3]),
    }
    writer.on_test_epoch_start(trainer, module)
    writer.on_test_batch_end(trainer, module, outputs, batch, 0)
    writer.on_test_batch_end(trainer, module, None, batch, 1)  # an all-failed batch: no rows
    writer.on_test_epoch_end(trainer, module)
    frame = module.cost_model().student_frame
    table = read_csv(tmp_path / "predictions.csv")
    assert [(r["video_id"], r["label_1"], r["label_2"], r["exit_checkpoint"]) for r in table] == [
        ("x1", "b", "a", "0"),
        ("x2", "a", "c", "3"),
    ]
    assert float(table[0]["gflops"]) == pytest.approx(3 * frame, rel=1e-5)  # 3 real frames
    assert float(table[1]["gflops"]) == pytest.approx(2 * frame, rel=1e-5)
    assert not (tmp_path / "predictions.jsonl").exists()
    with pytest.raises(ValueError, match="formats"):
        PredictionWriter(tmp_path, formats=["parquet"])
