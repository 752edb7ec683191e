"""The GPU path, checked as far as a CPU can: bf16 mixed precision trains with finite losses,
costs and metrics do not depend on the precision, and no code names a device. The cases
marked ``gpu`` run the same on CUDA (bf16 and fp16, channels-last, NCCL, a checkpoint
saved there and loaded on the CPU); without a CUDA device they are skipped, and
``scripts/device_check.sh`` runs them on a GPU machine."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from typing_extensions import override

from dkp.evaluation.video_scores import SCORES_FILE, read_scores
from dkp.lightning import load_module
from dkp.runtime.jobs import run_job
from dkp.tasks.evaluate import evaluate
from dkp.tasks.train import train
from tests.conftest import DKP_FROM_SCRATCH, compose_config, val_loader
from tests.conftest import SHORT_FIT as STEPS

REPO = Path(__file__).resolve().parents[1]
HERE = "tests.test_gpu_ready"
CUDA = torch.cuda.is_available()
needs_cuda = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason="needs a CUDA device (scripts/device_check.sh)"),
]

# A GPU named in the code: the model and its inputs then disagree on some machine. (Moving
# results to the host, .cpu() or .to("cpu"), is no assumption: it works everywhere.)
HARD_CODED_DEVICES = {
    r"\.cuda\(": ".cuda() (use the device of the module or the input)",
    r"device\s*=\s*['\"](cuda|mps|xpu)": "a GPU given by name",
    r"torch\.device\(\s*['\"](cuda|mps|xpu)": "a GPU given by name",
    r"\.to\(\s*['\"](cuda|mps|xpu)": "a move to a GPU given by name",
    r"['\"]cuda:\d": "a GPU given by number",
    r"torch\.cuda\.\w+Tensor\b": "a legacy CUDA tensor type",
    r"set_default_(device|tensor_type)": "a process-wide default device",
}


def test_no_code_hard_codes_a_device():
    """Tensors follow the module or the input; checkpoints load with map_location="cpu"."""
    found = []
    for path in sorted((REPO / "dkp").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in HARD_CODED_DEVICES.items():
                if re.search(pattern, code):
                    found.append(f"{path.relative_to(REPO)}:{number}: {what}: {line.strip()}")
    assert not found, "\n".join(found)


class RecordLosses(pl.Callback):
    """Keeps every training step's loss, and where the weights and the loss lived."""

    instances: list[RecordLosses] = []

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.loss_dtypes: set[torch.dtype] = set()
        self.devices: set[str] = set()
        RecordLosses.instances.append(self)

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))
        self.loss_dtypes.add(loss.dtype)
        self.devices.add(next(pl_module.parameters()).device.type)


PRECISIONS = [
    pytest.param("cpu", "bf16-mixed", id="cpu-bf16"),
    pytest.param("gpu", "bf16-mixed", id="cuda-bf16", marks=needs_cuda),
    pytest.param("gpu", "16-mixed", id="cuda-fp16", marks=needs_cuda),
]


@pytest.mark.slow
@pytest.mark.parametrize(("accelerator", "precision"), PRECISIONS)
def test_mixed_precision_training_gives_finite_losses_and_float32_weights(
    tiny_dataset, tmp_path, accelerator, precision
):
    RecordLosses.instances.clear()
    overrides = [
        *DKP_FROM_SCRATCH,
        *STEPS,
        f"trainer.accelerator={accelerator}",
        f"trainer.precision={precision}",
        f"+callbacks.losses._target_={HERE}.RecordLosses",
    ]
    results = run_job(compose_config("train", overrides, tmp_path, tiny_dataset), train)
    (record,) = RecordLosses.instances
    assert len(record.losses) == 3 and all(math.isfinite(x) for x in record.losses)
    assert record.devices == {"cpu" if accelerator == "cpu" else "cuda"}
    assert record.loss_dtypes == {torch.float32}  # autocast computes the loss in float32
    assert 0.0 <= results.metrics["val/mAP"] <= 1.0
    state = torch.load(results.last_checkpoint, map_location="cpu", weights_only=True)
    floats = [v for v in state["state_dict"].values() if v.is_floating_point()]
    assert {v.dtype for v in floats} == {torch.float32}  # mixed precision keeps fp32 weights
    assert all(torch.isfinite(v).all() for v in floats)


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP, tied scores taken together (as a threshold would), in float64."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order].astype(np.float64), positive[order].astype(np.float64)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def independent_map(run_dir: Path) -> float:
    """mAP recomputed from a run's ``scores.npz`` over classes with a positive video."""
    scores = read_scores(run_dir / SCORES_FILE)
    aps = [
        average_precision(scores.probs[:, c], scores.target[:, c])
        for c in range(scores.target.shape[1])
        if scores.target[:, c].any()
    ]
    return float(np.mean(aps))


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_dataset, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("teacher")
    cfg = compose_config("train", ["experiment=teacher", *STEPS], out, tiny_dataset)
    return run_job(cfg, train).last_checkpoint


@pytest.mark.parametrize(
    "accelerator", ["cpu", pytest.param("gpu", id="cuda", marks=needs_cuda)], ids=["cpu", None]
)
def test_mixed_precision_counts_the_same_cost_and_scores_metrics_exactly(
    teacher_ckpt, tiny_dataset, tmp_path, accelerator
):
    """bf16 changes the probabilities a little; never what a video cost, nor how the metrics
    are computed from the probabilities it gave."""
    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        overrides = [
            f"ckpt_path={teacher_ckpt}",
            "split=val",
            "sampling.n_t=2",
            f"trainer.accelerator={'cpu' if precision == '32-true' else accelerator}",
            f"trainer.precision={precision}",
        ]
        out = tmp_path / precision
        runs[precision] = (
            out,
            run_job(compose_config("eval", overrides, out, tiny_dataset), evaluate),
        )
    (full_dir, full), (mixed_dir, mixed) = runs["32-true"], runs["bf16-mixed"]
    assert mixed.cost == full.cost and mixed.num_videos == full.num_videos > 0
    assert mixed.metrics["val/mAP"] == pytest.approx(independent_map(mixed_dir), abs=1e-6)
    assert full.metrics["val/mAP"] == pytest.approx(independent_map(full_dir), abs=1e-6)
    a, b = read_scores(full_dir / SCORES_FILE), read_scores(mixed_dir / SCORES_FILE)
    assert list(a.video_ids) == list(b.video_ids)
    np.testing.assert_allclose(b.probs, a.probs, atol=0.02)  # bf16 keeps 8 bits of mantissa


# --- CUDA only -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_on_cuda(tiny_dataset, tmp_path_factory) -> str:
    """The last.ckpt of DKP trained a few steps with ``trainer=gpu`` in bf16."""
    overrides = [*DKP_FROM_SCRATCH, *STEPS, "trainer=gpu", "trainer.precision=bf16-mixed"]
    out = tmp_path_factory.mktemp("cuda")
    return run_job(compose_config("train", overrides, out, tiny_dataset), train).last_checkpoint


@pytest.fixture
def full_fp32():
    """TF32 off (CUDA matmuls and convolutions in true fp32, as on the CPU), restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device (scripts/device_check.sh)")
@pytest.mark.usefixtures("full_fp32")
def test_a_checkpoint_trained_on_cuda_scores_the_same_on_cpu(
    trained_on_cuda, tiny_dataset, tmp_path, memory_format
):
    """Saved on the GPU, loaded on the CPU (the default), the same weights give the same
    probabilities, whether the GPU copy runs contiguous or channels-last."""
    saved = torch.load(trained_on_cuda, weights_only=True)["state_dict"]
    assert next(iter(saved.values())).device.type == "cuda"  # map_location is what makes it
    on_cpu = load_module(trained_on_cuda).eval()
    assert next(on_cpu.parameters()).device.type == "cpu"
    on_gpu = load_module(trained_on_cuda, map_location="cuda").eval()
    if memory_format == "channels_last":
        on_gpu = on_gpu.to(memory_format=torch.channels_last)
    batch = next(iter(val_loader(on_cpu, tiny_dataset, tmp_path)))
    with torch.inference_mode():
        expected = on_cpu.video_probs(batch)
        got = on_gpu.video_probs(batch_to(batch, "cuda")).cpu()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-3)


def batch_to(batch, device: str):
    """``batch`` with its tensors on ``device``."""
    from dataclasses import fields, replace

    moved = {
        f.name: getattr(batch, f.name).to(device)
        for f in fields(batch)
        if isinstance(getattr(batch, f.name), torch.Tensor)
    }
    return replace(batch, **moved)


class RecordBackend(pl.Callback):
    """Keeps the process group's backend as the fit starts."""

    backends: list[str] = []

    @override
    def on_fit_start(self, trainer, pl_module) -> None:
        RecordBackend.backends.append(torch.distributed.get_backend())


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device (scripts/device_check.sh)")
def test_ddp_on_cuda_uses_nccl(tiny_dataset, tmp_path):
    RecordBackend.backends.clear()
    overrides = [
        "experiment=teacher",
        *STEPS,
        "trainer=ddp",
        "trainer.devices=1",
        "trainer.precision=bf16-mixed",
        f"+callbacks.backend._target_={HERE}.RecordBackend",
    ]
    results = run_job(compose_config("train", overrides, tmp_path, tiny_dataset), train)
    assert RecordBackend.backends == ["nccl"]
    assert math.isfinite(results.metrics["val/mAP"])


# --- the device check, up to CUDA ----------------------------------------------------------
@pytest.mark.slow
def test_the_device_check_runs_every_step_on_the_cpu(tmp_path):
    """``scripts/device_check.sh --cpu-dry-run``: what the GPU machine will run, at the
    embedded sizes: tests, bf16 training, checkpoints, every throughput figure, the report."""
    import json
    import subprocess

    run = subprocess.run(
        ["bash", "scripts/device_check.sh", "--cpu-dry-run", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["passed"] and report["plan"]["device"] == "cpu"
    checks = report["checks"]
    assert {
        "tests",
        "train teacher (embedded, bf16-mixed)",
        "train dkp (embedded, bf16-mixed)",
    } <= set(checks)
    assert all(c["passed"] for c in checks.values()), checks
    rows = {(r["model"], r["mode"], r["batch"], r["decoding"]): r for r in report["throughput"]}
    for model in ("teacher", "student", "dkp"):
        for key in [
            (model, m, b, d) for m in ("infer", "train") for b in (2, 4) for d in (False, True)
        ]:
            assert rows[key]["status"] == "ok" and rows[key]["videos_s"] > 0, key
    assert report["gflops"]["teacher"] > report["gflops"]["dkp"] > report["gflops"]["student"]
    table = (tmp_path / "device_check.md").read_text()
    assert "| DKP | " in table and "GFLOPs ratio teacher/DKP" in table
