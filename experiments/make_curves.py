"""`make curves`: embedded data -> teacher, student, DKP, early exit -> sweeps -> figures.

Every step is a dkp command a user could type, its output in a log under --runs/logs; each
writes its results into a fixed directory under --runs, so running this again skips what is
already done (a changed config is recomputed). Figures and tables go to --figures
(``outputs/curves/figures``; ``make readme-figures`` copies them into docs/ for the README).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from functools import partial
from pathlib import Path

from dkp.reporting.tables import exit_counts_near
from dkp.reporting.verdicts import Claim
from dkp.runtime.commands import CommandRunner
from dkp.runtime.results import Results, read_results
from dkp.runtime.steps import Progress, Step, StepFailed, run_steps

PY = sys.executable

# (name, experiment, sampling overrides) of the training stages.
STAGES = {
    "teacher": ["experiment=teacher", "sampling=adaptive", "sampling.n_t=4"],
    "student": ["experiment=student", "sampling=adaptive", "sampling.n_s=16"],
    "dkp_adaptive": ["experiment=dkp", "sampling=adaptive", "sampling.n_t=4", "sampling.ratio=4"],
    "dkp_fixed": ["experiment=dkp", "sampling=fixed", "sampling.r_t=6.0", "sampling.ratio=4"],
    # Early exit on the teacher stream (8 frames at the teacher's size), trained from scratch.
    "early_exit": ["experiment=early_exit", "trainer.max_epochs=4"],
}
# (sweep dir, checkpoint stage, sweep recipe in conf/sweep, extra overrides)
SWEEPS = [
    ("teacher", "teacher", "teacher", []),
    ("student", "student", "student", []),
    ("dkp_adaptive4", "dkp_adaptive", "adaptive", ["sampling.ratio=4", "series=DKP Adaptive-4"]),
    ("dkp_adaptive8", "dkp_adaptive", "adaptive", ["sampling.ratio=8", "series=DKP Adaptive-8"]),
    ("dkp_fixed4", "dkp_fixed", "fixed", ["sampling.ratio=4", "series=DKP Fixed-4"]),
    ("dkp_fixed8", "dkp_fixed", "fixed", ["sampling.ratio=8", "series=DKP Fixed-8"]),
    ("nt5", "dkp_adaptive", "nt5", []),
    ("ns20", "dkp_adaptive", "ns20", []),
]
# (output dir, checkpoint stage, budget fractions of the full model's GFLOPs) of the
# early-exit curves: thresholds are chosen on validation for each budget, scored on test.
# Without dkp-exits' wall-clock timing: nothing here shows it (the figures draw GFLOPs, `make
# bench` times the models side by side), and even at 2 rounds it took 60 % of these runs.
UNTIMED = ["timing=false"]
EXITS = [
    # every tenth above half the cost, so "reaches its full model at X %" is read to 10 %
    ("early_exit", "early_exit", ["0.2", "0.35", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"],
     UNTIMED),
    # dynamic DKP: the student's frames, then the teacher's, in steps, stopping on a score
    # learned on validation (the student's confidence alone cannot tell a fine-detail video it
    # cannot see from one it can), the teacher's frames chosen by the frame selector among 8
    ("dynamic_dkp", "dkp_adaptive",
     ["0.3", "0.35", "0.4", "0.45", "0.5", "0.55", "0.6", "0.7", "0.8", "1.0"],
     ["stop_score=learned", "frame_selector.enabled=true", "series=Dynamic DKP", *UNTIMED]),
    # the same without the selector (coarse to fine), and with the papers' stopping score
    ("dynamic_dkp_c2f", "dkp_adaptive", ["0.4", "0.5", "0.6", "0.7", "0.8", "1.0"],
     ["stop_score=learned", "series='Dynamic DKP (no selector)'", *UNTIMED]),
    ("dynamic_dkp_maxprob", "dkp_adaptive", ["0.4", "0.5", "0.6", "0.7", "0.8", "1.0"],
     ["frame_selector.enabled=true", "series='Dynamic DKP (max probability)'", *UNTIMED]),
]  # fmt: skip
# What the papers claim, checked on the results (paired bootstrap; see dkp.reporting.verdicts).
CLAIMS = [
    Claim("DKP above the teacher at equal GFLOPs", "DKP Adaptive-4", "Teacher", "equal_cost"),
    Claim("DKP above the student at equal GFLOPs", "DKP Adaptive-4", "Student", "equal_cost"),
    Claim("DKP (fixed) above the teacher at equal GFLOPs", "DKP Fixed-4", "Teacher", "equal_cost"),
    Claim("Fixed above adaptive at the lowest budget, ratio 4", "DKP Fixed-4", "DKP Adaptive-4",
          "lowest"),
    Claim("Fixed above adaptive at the lowest budget, ratio 8", "DKP Fixed-8", "DKP Adaptive-8",
          "lowest"),
    Claim("Ratio 8 above ratio 4 at the lowest budget, adaptive", "DKP Adaptive-8",
          "DKP Adaptive-4", "lowest"),
    Claim("Ratio 8 above ratio 4 at the lowest budget, fixed", "DKP Fixed-8", "DKP Fixed-4",
          "lowest"),
    Claim("ns-20 keeps improving with n_t (20 against 5)", "ns-20", kind="rises"),
    Claim("ns-20 passes the teacher (best against best)", "ns-20", "Teacher", "best"),
    Claim("nt-5 improves with n_s (50 against 5)", "nt-5", kind="rises"),
    Claim("Early exit reaches its full model at a lower cost", "Early exit (ResNet)",
          kind="reaches"),
    Claim("Dynamic DKP reaches plain DKP at a lower cost", "Dynamic DKP", "DKP Adaptive-4",
          "reaches"),
    Claim("Dynamic DKP above plain DKP at equal GFLOPs", "Dynamic DKP", "DKP Adaptive-4",
          "equal_cost"),
    Claim("The frame selector raises dynamic DKP at equal GFLOPs", "Dynamic DKP",
          "Dynamic DKP (no selector)", "equal_cost"),
    Claim("Dynamic DKP without the selector reaches plain DKP at a lower cost",
          "Dynamic DKP (no selector)", "DKP Adaptive-4", "reaches"),
    Claim("Dynamic DKP (max probability) reaches plain DKP at a lower cost",
          "Dynamic DKP (max probability)", "DKP Adaptive-4", "reaches"),
]  # fmt: skip
QUICK = {
    "train": ["trainer.max_epochs=3"],
    "sweeps": {"teacher", "student", "dkp_adaptive4", "dkp_fixed4"},
}


PROGRESS = Progress()
#: Each kind of step's time relative to a training's, which the time left assumes until a
#: step of that kind is done: a fresh clone's run on 2 cores (1,296 test videos) took 63 s
#: per training, 78 per sweep, 26 per exit curve and 7 per report on average.
STEP_WEIGHTS = {"train": 1.0, "sweep": 1.2, "exit": 0.4, "report": 0.1}
#: Commands run forked from this process once it has imported torch and Lightning, which
#: saves each 4-5 s (dkp.runtime.commands); main()'s --no-fork makes each a fresh process.
COMMANDS = CommandRunner()
#: Commands run at once (main()'s --jobs): two keep 2 cores busy (dkp.runtime.steps).
JOBS = 2


def run_all(steps: list[Step], progress: Progress | None = PROGRESS) -> None:
    """Run the steps, ``JOBS`` at a time; stop with the failed one's log tail if one fails."""
    try:
        run_steps(steps, COMMANDS, JOBS, progress=progress)
    except StepFailed as failure:
        log = failure.step.log
        tail = "".join(log.read_text().splitlines(keepends=True)[-25:])
        sys.exit(f"command failed ({failure.status}); log {log}:\n{tail}")


def run(args: list[str], log: Path) -> None:
    """Run one dkp command (not counted in ``PROGRESS``), its output to ``log``; stop with
    the log's tail if it fails."""
    run_all([Step(log.stem, lambda: args, log)], progress=None)


def checkpoint(runs: Path, stage: str, tag: str) -> str:
    """The best checkpoint of a finished training stage (seed ``tag``)."""
    path = runs / "train" / stage / tag / "results.json"
    if not path.is_file():
        sys.exit(f"{path} is missing: run make curves first")
    return read_results(path).best_checkpoint


def train_step(name: str, runs: Path, data: Path, extra: list[str], tag: str) -> Step:
    """Training stage ``name`` (seed ``tag``); DKP's stages start from the teacher's and the
    student's best checkpoints, so they need those stages."""
    run_dir = runs / "train" / name / tag
    needs = ("teacher", "student") if name.startswith("dkp") else ()

    def command() -> list[str]:
        overrides = [*STAGES[name], f"data.root={data}", f"hydra.run.dir={run_dir}", *extra]
        overrides.append("trainer.enable_progress_bar=false")
        if name.startswith("dkp"):
            overrides += [
                f"model.teacher_ckpt={checkpoint(runs, 'teacher', tag)}",
                f"model.student_ckpt={checkpoint(runs, 'student', tag)}",
            ]
        return [PY, "-m", "dkp.cli.train", *overrides]

    def done() -> None:
        results = read_results(run_dir / "results.json")
        metrics = results.metrics
        print(
            f"    {name}: test mAP {100 * metrics['test/mAP']:.1f}, "
            f"top-1 {100 * metrics['test/top1']:.1f} at "
            f"{1000 * results.cost.gflops:.1f} MFLOPs/video",
            flush=True,
        )

    log = runs / "logs" / f"train_{name}{tag}.log"
    needs_trained = tuple(f"train_{n}{tag}" for n in needs)
    return Step(f"train_{name}{tag}", command, log, needs_trained, done, kind="train")


def trained_checkpoints(runs: Path, tag: str = "") -> dict[str, str]:
    """The best checkpoint of every training stage of a finished run (seed ``tag``)."""
    return {name: checkpoint(runs, name, tag) for name in STAGES}


def _sweep_command(runs: Path, stage: str, tag: str, data: Path, recipe: str,
                   overrides: list[str], sweep_dir: Path) -> list[str]:  # fmt: skip
    cmd = [PY, "-m", "dkp.cli.evaluate", "-m", f"+sweep={recipe}"]
    cmd += [f"ckpt_path={checkpoint(runs, stage, tag)}", f"data.root={data}"]
    return [*cmd, f"hydra.sweep.dir={sweep_dir}", *overrides, "trainer.enable_progress_bar=false"]


def _exits_command(runs: Path, stage: str, tag: str, data: Path, fractions: list[str],
                   overrides: list[str], curve_dir: Path) -> list[str]:  # fmt: skip
    cmd = [PY, "-m", "dkp.cli.exits", f"ckpt_path={checkpoint(runs, stage, tag)}"]
    cmd += [f"data.root={data}", f"budget_fraction=[{','.join(fractions)}]"]
    return [*cmd, f"hydra.run.dir={curve_dir}", *overrides]


def evaluation_steps(
    runs: Path, data: Path, tag: str, sweeps: list = SWEEPS, out: Path | None = None,
    trained: bool = True,
) -> list[Step]:  # fmt: skip
    """Every sweep and exit curve of the models ``runs`` trained (seed ``tag``) on ``data``'s
    test split, into ``out/sweeps/<name>/<tag>`` (``out``: ``runs``); with ``trained``, each
    needs its training step (in the same list of steps)."""
    out = out or runs
    steps = []
    kinds = (("sweep", "sweep_", _sweep_command, sweeps), ("exit", "", _exits_command, EXITS))
    for kind, prefix, build, rows in kinds:
        for name, stage, what, overrides in rows:
            command = partial(build, runs, stage, tag, data, what, overrides,
                              out / "sweeps" / name / tag)  # fmt: skip
            step = f"{prefix}{name}{tag}"
            needs = (f"train_{stage}{tag}",) if trained else ()
            steps.append(Step(step, command, out / "logs" / f"{step}.log", needs, kind=kind))
    return steps


def exit_points(out: Path, tag: str = "") -> dict[str, list[Results]]:
    """Each exit curve's points, by series, as scored into ``out/sweeps/<name>/<tag>``."""
    points = {}
    for name, *_ in EXITS:
        curve = [
            read_results(p)
            for p in sorted((out / "sweeps" / name / tag).glob("[0-9]*/results.json"))
        ]
        if curve:
            points[curve[0].series] = curve
    return points


def frame_figures(runs: Path, data: Path, out: Path, count: int) -> Step:
    """Fig. S-3 style figures for a few validation videos: per-frame probability of the
    ground-truth class, student vs ensemble (one video per class, the first few classes), by
    the adaptive DKP model ``runs`` trained."""
    annotations_file = data / "activity_net.v1-3.min.json"
    annotations = json.loads(annotations_file.read_text())["database"]
    chosen, seen = [], set()
    for video_id, entry in sorted(annotations.items()):
        label = entry["annotations"][0]["label"]
        if entry["subset"] == "validation" and label not in seen and len(entry["annotations"]) == 1:
            seen.add(label)
            chosen.append(data / "videos" / f"v_{video_id}.mp4")
    logs = runs / "logs"
    folder = logs / "frame_figures"  # one process for every video; renamed frames_<video>.png

    def command() -> list[str]:
        shutil.rmtree(folder, ignore_errors=True)
        ckpt = checkpoint(runs, "dkp_adaptive", "")
        cmd = [PY, "-m", "dkp.cli.predict", "--ckpt", ckpt, *map(str, chosen[:count])]
        return [*cmd, "--plot", str(folder), "--annotations", str(annotations_file)]

    def done() -> None:
        for path in chosen[:count]:
            shutil.move(folder / f"{path.stem}.png", out / f"frames_{path.stem}.png")

    return Step("frame_figures", command, logs / "predict.log", done=done, kind="report")


def copy_exit_tables(runs: Path, figures: Path) -> None:
    """The exit counts near half the cost, each exit curve's checkpoints table and early
    exit's example figure, from the exit curves' runs into ``figures``."""
    swept = runs / "sweeps"
    figures.mkdir(parents=True, exist_ok=True)
    exit_counts_near(exit_points(runs), figures, fraction=0.5)
    for name, *_ in EXITS:  # each checkpoint alone, and the oracle's floor on any stopping rule
        for kind in ("md", "csv"):
            table = swept / name / f"checkpoints.{kind}"
            if table.is_file():
                shutil.copy(table, figures / f"checkpoints_{name}.{kind}")
    examples = swept / "early_exit" / "exit_examples.png"
    if examples.is_file():
        shutil.copy(examples, figures / "exit_examples.png")


def seed_tag(seed: int) -> str:
    """The folder a seed's trainings and sweeps go in: seed 0 in the plain layout, seed k in
    ``seed<k>/``."""
    return f"seed{seed}" if seed else ""


def seed_runs(sweep: Path, seeds: int) -> list[Path]:
    """The runs of ``sweep`` by its first ``seeds`` seeds: seed 0's job folders and
    ``seed<k>/``, not the other seeds an earlier run left there (a missing sweep as itself,
    which the readers name)."""
    if not sweep.is_dir():
        return [sweep]
    zero = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    return [
        *zero,
        *(sweep / seed_tag(k) for k in range(1, seeds) if (sweep / seed_tag(k)).is_dir()),
    ]


def report_steps(
    runs: Path, data: Path, figures: Path, sweeps: list, quick: bool, seeds: int = 1
) -> list[Step]:
    """The steps that read the trained models, sweeps and exit curves of ``seeds`` seeds into
    ``figures``, the longest first: teacher frame choice, verdicts, curves, class groups,
    sampling coverage and the frame figures. Each command is built when its step starts, from
    what is then on disk."""
    here, logs, swept = Path(__file__).parent, runs / "logs", runs / "sweeps"
    fixed_cost = [n for n, *_ in sweeps if n in ("teacher", "student") or n.startswith("dkp_")]

    def runs_of(names: list[str]) -> list[Path]:
        return [run for n in names for run in seed_runs(swept / n, seeds)]

    def curves() -> list[Path]:
        return runs_of([*fixed_cost, *(n for n, *_ in EXITS)])

    def frame_sweeps() -> list[Path]:  # Fig. S-2's: the single networks, nt-5 and ns-20
        return runs_of([n for n in ("teacher", "student", "nt5", "ns20") if (swept / n).is_dir()])

    def with_ckpt(script: str, *args: str) -> list[str]:
        ckpt = checkpoint(runs, "dkp_adaptive", "")
        return [PY, str(here / script), "--data", str(data), "--ckpt", ckpt, *args]

    def claims() -> list[str]:
        return [PY, str(here / "check_claims.py"), "--out", str(figures),
                *map(str, sorted({*curves(), *frame_sweeps()}))]  # fmt: skip

    def draw(name: str) -> list[str]:
        series = curves() if name == "curves" else frame_sweeps()
        return [PY, "-m", "dkp.cli.curves", "--out", str(figures), "--title", "Embedded dataset",
                "--name", name, *map(str, series)]  # fmt: skip

    # dynamic DKP's first teacher frame: the middle one, the student's choice, an oracle's
    choice = partial(with_ckpt, "teacher_frame_choice.py", "--out",
                     str(figures / "teacher_frame_choice.md"))  # fmt: skip

    def class_groups() -> list[str]:  # each fixed-cost point: mAP per class group, top-1 by length
        out = ["--out", str(figures / "class_groups.md")]
        return [PY, str(here / "class_groups.py"), "--data", str(data), *out,
                *map(str, runs_of(fixed_cost))]  # fmt: skip

    coverage = partial(with_ckpt, "sampling_coverage.py", "--out", str(figures / "coverage.md"))
    drawn = ["curves"] if quick else ["curves", "frame_counts"]
    return [
        Step("frame_choice", choice, logs / "frame_choice.log", kind="report"),
        Step("verdicts", claims, logs / "verdicts.log", kind="report"),
        *(Step(name, partial(draw, name), logs / f"{name}.log", kind="report") for name in drawn),
        Step("class_groups", class_groups, logs / "class_groups.log", kind="report"),
        Step("coverage", coverage, logs / "coverage.log", kind="report"),
        frame_figures(runs, data, figures, 2 if quick else 4),
    ]


def pipeline(
    runs: Path, data: Path, figures: Path, seeds: int = 1, quick: bool = False
) -> tuple[list[Step], list[Step]]:
    """Every training, sweep and exit curve of ``seeds`` seeds (seed 0 in the plain layout,
    seed k under ``seed<k>/``), and the report steps that follow them."""
    extra = QUICK["train"] if quick else []
    sweeps = [s for s in SWEEPS if not quick or s[0] in QUICK["sweeps"]]
    tags = [seed_tag(seed) for seed in range(seeds)]
    steps = []
    for seed, tag in enumerate(tags):
        steps += [train_step(n, runs, data, [*extra, f"seed={seed}"], tag) for n in STAGES]
    for tag in tags:
        steps += evaluation_steps(runs, data, tag, sweeps)
    return steps, report_steps(runs, data, figures, sweeps, quick, seeds)


def other_seeds(runs: Path, seeds: int) -> list[str]:
    """The seeds an earlier run trained into ``runs`` beyond the first ``seeds``, which the
    figures leave out."""
    found = {p.name for p in runs.glob("sweeps/*/seed*") if p.name[4:].isdigit()}
    return sorted((t for t in found if int(t[4:]) >= seeds), key=lambda t: int(t[4:]))


def main(argv: list[str] | None = None) -> int:
    global JOBS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--runs", type=Path, default=None, help="default: outputs/curves[-quick]")
    parser.add_argument("--figures", type=Path, default=None, help="default: RUNS/figures")
    parser.add_argument("--quick", action="store_true", help="3 epochs per stage, 4 sweeps")
    parser.add_argument("--seeds", type=int, default=1, help="models trained per stage (seeds)")
    parser.add_argument(
        "--synthetic",
        default="",
        help="dkp-synthetic options, e.g. '--event-spacing 3' (with a --data of its own)",
    )
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="run every command as a fresh process (each then imports torch anew: ~5 s)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=JOBS,
        help="commands run at once (each computes what it computes alone; 1: one at a time)",
    )
    args = parser.parse_args(argv)
    COMMANDS.fork = COMMANDS.fork and not args.no_fork
    JOBS = args.jobs
    runs = (args.runs or Path("outputs/curves" + ("-quick" if args.quick else ""))).resolve()
    figures = (args.figures or runs / "figures").resolve()
    data = args.data.resolve()
    start = time.time()
    logs = runs / "logs"
    print(f"[1/4] embedded dataset in {data}", flush=True)
    synthetic = [PY, "-m", "dkp.cli.synthetic", "--out", str(data), *shlex.split(args.synthetic)]
    run(synthetic, logs / "synthetic.log")
    print(
        f"[2/4 and 3/4] training teacher, student, DKP, early exit and their evaluation sweeps "
        f"({args.seeds} seed{'s' if args.seeds > 1 else ''}; {JOBS} commands at a time)",
        flush=True,
    )
    steps, reports = pipeline(runs, data, figures, args.seeds, args.quick)
    PROGRESS.begin([s.kind for s in steps + reports], JOBS, STEP_WEIGHTS)
    run_all(steps)
    print("[4/4] curves, tables, verdicts, example figures, coverage, class groups", flush=True)
    copy_exit_tables(runs, figures)
    if extra := other_seeds(runs, args.seeds):
        print(f"    note: {runs} also holds {', '.join(extra)} of an earlier run, which the "
              "figures leave out (a larger --seeds draws them)", flush=True)  # fmt: skip
    run_all(reports)
    print(f"    verdicts: {figures / 'verdicts.md'}", flush=True)
    minutes = (time.time() - start) / 60
    print(f"done in {minutes:.1f} min; figures and tables in {figures}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
