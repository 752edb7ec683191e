"""Impossible config values stop a run at start-up, naming the field, before any training."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dkp.tasks.train import train
from tests.conftest import compose_config

TEACHER = ["experiment=teacher", "trainer.max_epochs=1"]
DKP = ["experiment=dkp", "model.teacher_ckpt=null", "trainer.max_epochs=1"]

CASES = {
    "no frames": (TEACHER + ["sampling.n_t=0"], "sampling.n_t: must be an integer >= 1, got 0"),
    "student sees fewer frames (adaptive)": (
        DKP + ["sampling.n_t=4", "sampling.n_s=2"],
        "sampling.n_s: the student must see at least as many frames as the teacher, "
        "got n_s=2 < n_t=4",
    ),
    "ratio below one": (
        DKP + ["sampling.n_t=4", "sampling.ratio=0.5"],
        "sampling.n_s: .* n_s=2 < n_t=4 \\(from ratio=0.5\\)",
    ),
    "student samples less often (fixed)": (
        DKP + ["sampling=fixed", "sampling.r_t=4", "sampling.r_s=8"],
        "sampling.r_s: the student must sample at least as often as the teacher, "
        "got r_s=8 s > r_t=4 s",
    ),
    "negative interval": (
        DKP + ["sampling=fixed", "sampling.r_t=-2"],
        "sampling.r_t: must be a positive interval in seconds, got -2",
    ),
    "unknown backbone": (
        TEACHER + ["arch.teacher.backbone.name=resnet9"],
        "backbone.name: unknown backbone 'resnet9'",
    ),
    "data has other classes than configured": (
        TEACHER + ["data.num_classes=5"],
        "data.num_classes: config says 5 but the train split's annotations list 8 classes",
    ),
    "torch threads not a count": (
        TEACHER + ["torch_threads=0"],
        "torch_threads: 0 is not 'auto', null or a count >= 1",
    ),
    "a number that is not one": (
        TEACHER + ["trainer.max_epochs=abc"],
        "trainer.max_epochs: 'abc' is not an int or null",
    ),
    "a count that is not whole": (
        TEACHER + ["data.batch_size=2.5"],
        "data.batch_size: 2.5 is not an int",
    ),
    "an option the target does not have": (
        TEACHER + ["+trainer.max_epoch=3"],
        "trainer.max_epoch: .*Trainer has no option 'max_epoch'; did you mean max_epochs",
    ),
    "model predicts other classes than the data has": (
        TEACHER + ["model.net.num_classes=5"],
        "data.num_classes: the data has 8 classes but the model predicts 5",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_impossible_values_fail_at_start_up_naming_the_field(tiny_dataset, tmp_path, case):
    overrides, message = CASES[case]
    cfg = compose_config("train", overrides, tmp_path, tiny_dataset)
    with pytest.raises(ValueError, match=message):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained


def test_the_command_says_it_in_one_line_with_exit_code_2(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "dkp.cli.train", "experiment=teacher", "trainer.max_epochs=abc",
         f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines[-2:] == [
        "dkp-train: error: trainer.max_epochs: 'abc' is not an int or null",
        "  (DKP_DEBUG=1 shows the traceback)",
    ]
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "data").exists()  # no data work started
