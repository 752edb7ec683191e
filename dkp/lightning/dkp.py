"""DKP training: a frozen teacher, a student, and the propagation block and ensemble between."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from torch.nn import functional as F
from typing_extensions import override

from dkp.data.batch import Batch
from dkp.evaluation.cost import CostModel, frame_gmacs
from dkp.lightning.base import (
    FrameSeries,
    VideoModule,
    frame_counts,
    plain,
    soft_target,
    video_nll,
    without_weight_files,
)
from dkp.lightning.checkpoint import CheckpointError, require_kind, substate
from dkp.lightning.exiting import CheckpointScores
from dkp.lightning.frame_classifier import FrameClassifierModule
from dkp.models.dkp.dynamic import (
    dkp_checkpoint_probs,
    dynamic_dkp_inference,
    frames_seen,
    step_masks,
)
from dkp.models.dkp.net import DKPNet, DKPOutput, video_logits
from dkp.models.dkp.selector import FrameSelector
from dkp.models.early_exit.policy import ExitOutput, ExitPolicy

log = logging.getLogger(__name__)

DEFAULT_LOSS_WEIGHTS = {"ensemble": 1.0, "propagated": 1.0, "distill": 1.0, "student": 0.5}


def _from_frame_checkpoint(
    path: str, role: str, cross_role: bool
) -> tuple[dict, Any, dict[str, torch.Tensor]]:
    field = f"model.{role}_ckpt"
    hint = f"Train it first with `dkp-train experiment={role}` and pass its .ckpt file."
    ckpt = require_kind(path, FrameClassifierModule.kind, hint, field)
    hp = ckpt["hyper_parameters"]
    if hp.get("role") != role and not cross_role:
        raise CheckpointError(
            f"{field}: {path} was trained as the {hp.get('role')}, not the {role}; pass a "
            f"{role} checkpoint (or set model.cross_role=true to use it as the {role})"
        )
    state = substate(ckpt["state_dict"], "net.")
    return hp["net"], hp["input_size"], state


class DKPModule(VideoModule):
    """Trains propagation and ensemble (and optionally the student) against a teacher.

    ``teacher_ckpt`` (required for training) and ``student_ckpt`` (optional) are checkpoints
    of :class:`FrameClassifierModule`; their network configs and input sizes replace the
    ``teacher``/``student`` configs, and the resolved configs are what the DKP checkpoint
    stores, so ``DKPModule.load_from_checkpoint(path)`` needs neither file again.

    It is also :class:`~dkp.lightning.exiting.EarlyExiting` (dynamic DKP): checkpoint 0 is
    the student alone over more and more of its frames (``exit_student_steps`` checkpoints),
    the next ``exit_steps`` the DKP ensemble over more and more of the teacher's frames
    (:mod:`dkp.models.dkp.dynamic`).

    Loss = w_ensemble * NLL(video ensemble probabilities)
         + w_propagated * CE(mean propagated-student logits)
         + w_distill * T^2 * KL(teacher video distribution at T || propagated student at T)
         + w_student * CE(mean student logits)   (keeps the student a classifier on its own)
    """

    kind = "dkp"

    def __init__(
        self,
        student: dict,
        teacher: dict,
        student_size: int | list[int] = 112,
        teacher_size: int | list[int] = 224,
        propagation: dict | None = None,
        ensemble: dict | None = None,
        teacher_ckpt: str | None = None,
        student_ckpt: str | None = None,
        freeze_teacher: bool = True,
        freeze_student: bool = False,
        loss_weights: dict | None = None,
        distill_temperature: float = 4.0,
        cross_role: bool = False,
        exit_steps: int = 4,
        exit_student_steps: int = 1,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        classes: list[str] | None = None,
        sampling: dict | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, classes, sampling)
        student, teacher = plain(student), plain(teacher)
        student_size, teacher_size = plain(student_size), plain(teacher_size)
        weights = {**DEFAULT_LOSS_WEIGHTS, **(plain(loss_weights) or {})}
        unknown = set(weights) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"model.loss_weights: unknown terms {sorted(unknown)}")
        states: dict[str, dict[str, torch.Tensor]] = {}
        if teacher_ckpt:
            teacher, teacher_size, states["teacher"] = _from_frame_checkpoint(
                teacher_ckpt, "teacher", cross_role
            )
        if student_ckpt:
            student, student_size, states["student"] = _from_frame_checkpoint(
                student_ckpt, "student", cross_role
            )
        self.save_config(
            student=without_weight_files(student),
            teacher=without_weight_files(teacher),
            student_size=student_size,
            teacher_size=teacher_size,
            propagation=plain(propagation) or {},
            ensemble=plain(ensemble) or {},
            # Weights are now part of this module's state: a reload needs no files.
            teacher_ckpt=None,
            student_ckpt=None,
            teacher_source=teacher_ckpt,
            student_source=student_ckpt,
            freeze_teacher=freeze_teacher,
            freeze_student=freeze_student,
            loss_weights=weights,
            distill_temperature=distill_temperature,
            cross_role=cross_role,
            exit_steps=exit_steps,
            exit_student_steps=exit_student_steps,
        )
        if exit_steps < 1:
            raise ValueError(f"model.exit_steps: at least 1 teacher step, got {exit_steps}")
        if exit_student_steps < 1:
            raise ValueError(
                f"model.exit_student_steps: at least 1 student step, got {exit_student_steps}"
            )
        self.net = DKPNet(
            instantiate(student),
            instantiate(teacher),
            propagation=self.hparams.propagation,
            ensemble=self.hparams.ensemble,
        )
        self.frame_selector: FrameSelector | None = None  # dynamic DKP: see use_frame_selector
        self.teacher_limit: int | None = None
        self.selector_gmacs = 0.0
        for role, state in states.items():
            try:
                getattr(self.net, role).load_state_dict(state)
            except RuntimeError as err:
                source = teacher_ckpt if role == "teacher" else student_ckpt
                raise CheckpointError(f"{source}: does not fit the {role} network: {err}") from err
        for role, frozen in (("teacher", freeze_teacher), ("student", freeze_student)):
            if frozen:
                getattr(self.net, role).requires_grad_(False)
        self.train()

    @property
    def networks(self) -> tuple[str, ...]:
        return ("student", "teacher")

    @property
    def num_classes(self) -> int:
        return self.net.student.num_classes

    @property
    def input_sizes(self) -> dict[str, int | list[int]]:
        return {"student": self.hparams.student_size, "teacher": self.hparams.teacher_size}

    def build_cost_model(self) -> CostModel:
        sizes = self.input_sizes
        return CostModel(
            student_frame=frame_gmacs(self.net.student, sizes["student"]),
            teacher_frame=frame_gmacs(self.net.teacher, sizes["teacher"]),
            fusion_net=self.net,
        )

    # --- dynamic DKP (EarlyExiting) -----------------------------------------------------
    exit_series = "Dynamic DKP"

    @property
    def num_checkpoints(self) -> int:
        return self.student_steps + int(self.hparams.get("exit_steps", 4))

    @property
    def student_steps(self) -> int:
        """Checkpoints of the student alone (1 in checkpoints older than the option)."""
        return int(self.hparams.get("exit_student_steps", 1))

    def use_frame_selector(self, selector: FrameSelector | None, limit: int | None) -> None:
        """Dynamic DKP takes the teacher's frames best-first by ``selector`` (run on the
        student frame nearest each, its cost counted) and at most ``limit`` of them."""
        self.frame_selector, self.teacher_limit = selector, limit
        size = self.input_sizes["student"]
        self.selector_gmacs = 0.0 if selector is None else selector.frame_gmacs(size)

    def teacher_steps(self, batch: Batch) -> torch.Tensor:
        """The teacher frames each video has seen by each step ``(B, steps, N_t)``."""
        steps = self.num_checkpoints - self.student_steps
        scores = (
            None if self.frame_selector is None else self.frame_selector.candidate_scores(batch)
        )
        return step_masks(batch.teacher_mask, steps, scores, self.teacher_limit)

    def checkpoint_costs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """GMACs ``(B, K)`` of stopping each video at each checkpoint (each student step, then
        each teacher step) and the (student, teacher) frames ``(B, K, 2)`` run by then. The
        frame selector, where used, runs once on every candidate after the student."""
        model = self.cost_model()
        n_s, _ = frame_counts(batch)
        steps = self.num_checkpoints - self.student_steps
        student = frames_seen(batch.student_mask, self.student_steps).tolist()
        seen = frames_seen(batch.teacher_mask, steps, self.teacher_limit).tolist()
        selector = [c * self.selector_gmacs for c in batch.teacher_mask.sum(dim=1).tolist()]
        rows = list(zip(n_s, student, seen, selector, strict=True))
        frames = np.asarray([[[s, 0] for s in ss] + [[n, t] for t in ts] for n, ss, ts, _ in rows])
        gflops = [
            [s * model.student_frame for s in ss] + [model.video(n, t) + c for t in ts]
            for n, ss, ts, c in rows
        ]
        return np.asarray(gflops, np.float64), frames.astype(np.float64)

    def checkpoint_scores(self, batch: Batch) -> CheckpointScores:
        masks = self.teacher_steps(batch)
        steps = self.num_checkpoints - self.student_steps
        probs = dkp_checkpoint_probs(self.net, batch, steps, masks, self.student_steps)
        return CheckpointScores(probs, *self.checkpoint_costs(batch))

    def infer(self, batch: Batch, policy: ExitPolicy) -> ExitOutput:
        out = dynamic_dkp_inference(self.net, batch, policy, self.teacher_steps, self.student_steps)
        gflops, _ = self.checkpoint_costs(batch)
        out.gflops = torch.from_numpy(gflops[np.arange(len(batch)), out.exit_index.numpy()])
        return out

    @override
    def on_fit_start(self) -> None:
        if self.hparams.freeze_teacher and self.hparams.teacher_source is None:
            raise CheckpointError(
                "model.teacher_ckpt is not set: DKP trains against a trained, frozen teacher. "
                "Train one with `dkp-train experiment=teacher` and pass its checkpoint as "
                "model.teacher_ckpt=PATH (or set model.freeze_teacher=false)."
            )

    def train(self, mode: bool = True) -> DKPModule:
        """Frozen networks stay in eval mode (their BatchNorm statistics do not move)."""
        super().train(mode)
        for role in ("teacher", "student"):
            if self.hparams[f"freeze_{role}"]:
                getattr(self.net, role).eval()
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning restores per-module modes after validation; re-assert the frozen ones.
        self.train()

    def forward(self, batch: Batch) -> DKPOutput:
        return self.net(batch)

    def video_probs(self, batch: Batch) -> torch.Tensor:
        return self.net(batch).video_probs

    def frame_probs(self, batch: Batch) -> dict[str, FrameSeries]:
        out = self.net(batch)
        s_times, s_mask = batch.student_times, batch.student_mask
        return {
            "student": FrameSeries(out.student_logits.float().softmax(-1), s_times, s_mask),
            "teacher": FrameSeries(
                out.teacher_logits.float().softmax(-1), batch.teacher_times, batch.teacher_mask
            ),
            "propagated": FrameSeries(out.ensemble.propagated_probs, s_times, s_mask),
            "ensemble": FrameSeries(out.ensemble.frame_probs, s_times, s_mask),
        }

    def training_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.net(batch)
        w = self.hparams.loss_weights
        target = soft_target(batch.target)
        propagated = video_logits(out.propagated_logits, batch.student_mask)
        terms = {
            "ensemble": video_nll(out.video_probs, batch.target),
            "propagated": F.cross_entropy(propagated, target),
        }
        if w["distill"]:
            t = self.hparams.distill_temperature
            teacher = video_logits(out.teacher_logits, batch.teacher_mask).detach()
            terms["distill"] = (t * t) * F.kl_div(
                F.log_softmax(propagated / t, dim=-1),
                F.log_softmax(teacher / t, dim=-1),
                log_target=True,
                reduction="batchmean",
            )
        if w["student"]:
            student = video_logits(out.student_logits, batch.student_mask)
            terms["student"] = F.cross_entropy(student, target)
        terms["loss"] = sum(w[name] * value for name, value in terms.items())
        return terms
