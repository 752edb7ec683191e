"""Where dynamic DKP's first teacher frame should look, and whether the student can tell.

python experiments/teacher_frame_choice.py --data DIR --ckpt DKP.ckpt [--candidates 8] [--out F.md]

Dynamic DKP's second checkpoint fuses the student with one teacher frame. For every test video
the student runs once and the teacher on ``--candidates`` evenly spaced frames; each candidate
alone is fused with the student. The table gives mAP and top-1 (95 % bootstrap intervals) when
that one frame is the middle candidate (what dynamic DKP takes first without a selector), the
candidate where the student's nearest frame is most confident, the frame selector's choice
(:mod:`dkp.models.dkp.selector`, fitted on the validation split; its cost counted), or the
best candidate for the true class (an oracle: what a perfect selector would reach), with the
paired difference from the middle one; and, for scale, all candidates fused at once (plain DKP
with that many teacher frames).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dkp.evaluation.bootstrap import map_replicates, top1_replicates, weights_with_full_set
from dkp.lightning import load_module
from dkp.models.dkp.dynamic import coarse_to_fine
from dkp.models.dkp.selector import nearest_frames
from dkp.reporting.tables import emit_table, interval_cell
from dkp.runtime.config import compose
from dkp.tasks.exits import fit_frame_selector, load_batches


@torch.no_grad()
def single_frame_scores(ckpt: Path, data: Path, candidates: int) -> dict[str, np.ndarray]:
    """Per test video: probabilities ``(V, N, C)`` with each candidate alone, those with every
    candidate ``(V, C)``, the student's frame confidence and the frame selector's score (fitted
    on the validation split as ``dkp-exits frame_selector.enabled=true`` fits it) at each
    candidate ``(V, N)``, which candidates are real ``(V, N)``, targets ``(V, C)``, and GFLOPs
    with 1 and N frames."""
    module = load_module(ckpt, field="ckpt").eval()
    net, costs = module.net, module.cost_model()
    cfg = compose("exits", [f"data.root={data}", f"ckpt_path={ckpt}"])
    decoded, records = load_batches(module, cfg.data, ["test", "val"], {"n_t": candidates})
    selector = fit_frame_selector(decoded["val"], records["val"], cfg.frame_selector)
    keys = ("single", "joint", "confidence", "selector", "real", "target")
    parts: dict[str, list] = {k: [] for k in keys}
    gflops: dict[str, list] = {"cost_one": [], "cost_selector": [], "cost_all": []}
    selector_gmacs = selector.frame_gmacs(module.input_sizes["student"])
    for batch in decoded["test"]:
        student = net.student(batch.student_frames, batch.student_mask)
        teacher = net.teacher(batch.teacher_frames, batch.teacher_mask)

        real = batch.teacher_mask
        singles = []
        for k in range(real.shape[1]):
            alone = torch.zeros_like(real)
            alone[:, k] = real[:, k]
            alone[~real[:, k], 0] = True  # a short video's missing candidates: its first frame
            singles.append(fused(net, batch, student, teacher, alone))
        nearest = nearest_frames(batch.teacher_times, batch.student_times, batch.student_mask)
        frame_conf = student.logits.float().softmax(-1).max(-1).values
        parts["selector"].append(selector.candidate_scores(batch))
        parts["single"].append(torch.stack(singles, 1))
        parts["joint"].append(fused(net, batch, student, teacher, real))
        parts["confidence"].append(frame_conf.gather(1, nearest))
        parts["real"].append(real)
        parts["target"].append(batch.target)
        n_s = batch.student_mask.sum(1).tolist()
        gflops["cost_one"] += [costs.video(n, 1) for n in n_s]
        pairs = list(zip(n_s, real.sum(1).tolist(), strict=True))
        gflops["cost_selector"] += [costs.video(n, 1) + t * selector_gmacs for n, t in pairs]
        gflops["cost_all"] += [costs.video(n, t) for n, t in pairs]
    out = {k: torch.cat(v).numpy() for k, v in parts.items()}
    return out | {k: np.asarray(v) for k, v in gflops.items()}


def fused(net, batch, student, teacher, mask: torch.Tensor) -> torch.Tensor:
    """Video probabilities of DKP on already computed streams, seeing the teacher frames
    ``mask``."""
    seen = replace(batch, teacher_mask=mask)
    out = net.fuse(seen, student.features, student.logits, teacher.features, teacher.logits)
    return out.video_probs.float()


def choices(scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The candidate each rule picks per video ``(V,)``."""
    real, single, target = scores["real"], scores["single"], scores["target"]
    middle = [np.flatnonzero(r)[coarse_to_fine(int(r.sum()))[0]] for r in real]
    confident = np.where(real, scores["confidence"], -np.inf).argmax(1)
    selected = np.where(real, scores["selector"], -np.inf).argmax(1)
    truth = target.argmax(1)
    right = single[np.arange(len(truth)), :, truth]  # (V, N): the true class's probability
    oracle = np.where(real, right, -np.inf).argmax(1)
    return {"middle": np.asarray(middle), "confident": confident, "selector": selected,
            "oracle": oracle}  # fmt: skip


def table(scores: dict[str, np.ndarray], replicates: int) -> tuple[list[str], list[list[str]]]:
    """Rows: each rule's one-frame mAP and top-1 with intervals and the paired difference in
    mAP from the middle candidate; then every candidate at once."""
    target = scores["target"]
    weights = weights_with_full_set(len(target), replicates)
    picked = choices(scores)
    rows = {
        "middle candidate": (1, "cost_one", _single(scores, picked["middle"])),
        "student's most confident frame": (1, "cost_one", _single(scores, picked["confident"])),
        "frame selector's choice": (1, "cost_selector", _single(scores, picked["selector"])),
        "best for the true class (oracle)": (1, "cost_one", _single(scores, picked["oracle"])),
    }
    candidates = scores["real"].shape[1]
    rows[f"all {candidates} candidates fused at once"] = (candidates, "cost_all", scores["joint"])
    middle = None
    out = []
    for label, (frames, cost, probs) in rows.items():
        maps = map_replicates(probs, target, weights)
        top1 = top1_replicates(probs, target, weights)
        cells = [label, str(frames), f"{np.mean(scores[cost]):.4f}"]
        cells += [interval_cell(100 * maps), interval_cell(100 * top1)]
        cells.append("" if middle is None else interval_cell(100 * (maps - middle), sign="+"))
        middle = maps if middle is None else middle
        out.append(cells)
    header = ["teacher frames fused", "frames", "GFLOPs", "mAP (%)", "top-1 (%)",
              "mAP - middle"]  # fmt: skip
    return header, out


def _single(scores: dict[str, np.ndarray], index: np.ndarray) -> np.ndarray:
    return scores["single"][np.arange(len(index)), index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="an ActivityNet-format dataset")
    parser.add_argument("--ckpt", type=Path, required=True, help="a trained DKP checkpoint")
    parser.add_argument("--candidates", type=int, default=8, help="teacher frames to choose from")
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates")
    parser.add_argument("--out", type=Path, help="write the table here (.md, and .csv beside it)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    scores = single_frame_scores(args.ckpt, args.data.resolve(), args.candidates)
    header, rows = table(scores, args.replicates)
    emit_table(header, rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
