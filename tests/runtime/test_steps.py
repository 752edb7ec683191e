"""A pipeline's steps: at most N at once, each after what it needs, failures kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkp.runtime.commands import CommandRunner
from dkp.runtime.steps import Progress, Step, StepFailed, found_done, run_steps


def sh(
    tmp_path: Path, name: str, script: str, needs: tuple[str, ...] = (), done=None, kind: str = ""
) -> Step:
    log = tmp_path / "logs" / f"{name}.log"
    return Step(name, lambda: ["sh", "-c", script], log, needs, done, kind)


def wait_for(path: Path) -> str:
    """Shell that waits up to 20 s for ``path``, failing if it never appears."""
    return f"for i in $(seq 200); do [ -e {path} ] && exit 0; sleep 0.1; done; exit 9"


def test_two_steps_run_at_once_and_a_third_waits_for_both(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in "abc")
    said: list[str] = []
    steps = [
        sh(tmp_path, "a", f"touch {a}; {wait_for(b)}"),  # ends only once b has started
        sh(tmp_path, "b", f"touch {b}; {wait_for(a)}"),
        # built when it starts: it sees what a and b wrote
        Step(
            "c",
            lambda: ["sh", "-c", f"echo {a.exists() and b.exists()} > {c}"],
            tmp_path / "c.log",
            ("a", "b"),
            done=lambda: said.append("c done"),
        ),  # fmt: skip
    ]
    progress = Progress([""] * 3)
    run_steps(steps, CommandRunner(fork=False), jobs=2, say=said.append, progress=progress)
    assert c.read_text() == "True\n"
    assert said[:2] == [
        f"  $ sh -c touch {a}; {wait_for(b)}",
        f"  $ sh -c touch {b}; {wait_for(a)}",
    ]
    assert said[-1] == "c done" and said[-2].startswith("    c done in 0:0")
    assert said[-2].endswith("left]") and "[3/3, " in said[-2]


def test_a_command_shows_the_runs_of_one_folder_in_braces(tmp_path: Path) -> None:
    runs = [str(tmp_path / "sweeps" / "teacher" / job) for job in ("0", "1", "seed1")]
    other = str(tmp_path / "sweeps" / "student" / "0")
    argv = ["echo", *runs, other, f"--out={tmp_path}"]
    said: list[str] = []
    step = Step("echo", lambda: argv, tmp_path / "echo.log")
    run_steps([step], CommandRunner(fork=False), jobs=1, say=said.append)
    folder = tmp_path / "sweeps" / "teacher"
    assert said[0] == f"  $ echo {folder}/{{0,1,seed1}} {other} --out={tmp_path}"
    assert (tmp_path / "echo.log").read_text().split() == argv[1:]  # run as given


def test_time_left_is_the_mean_step_over_the_jobs_not_the_wall_clock_pace() -> None:
    progress = Progress([""] * 5, jobs=2)
    assert progress.step(60.0).endswith("~2:00 left]")  # 4 steps of 60 s, 2 at a time
    assert progress.step(30.0).startswith("[2/5, 0:00 spent")
    progress.begin(["x"] * 3)  # a new phase, one at a time
    assert progress.step(10.0, "x").endswith("[1/3, 0:00 spent, ~0:20 left]")


def test_each_kind_counts_at_its_own_mean_and_an_unseen_kind_at_its_weight() -> None:
    progress = Progress()
    weights = {"train": 1.0, "sweep": 0.5, "report": 0.1}
    progress.begin(["train", "train", "sweep", "sweep", "report"], jobs=2, weights=weights)
    # a train at 60 s; sweeps at 0.5 x 60 and the report at 0.1 x 60: (60 + 60 + 6) / 2
    assert progress.step(60.0, "train").endswith("[1/5, 0:00 spent, ~1:03 left]")
    # a sweep took 90 s: the other one counts 90; the report 0.1 x (150 s / 1.5 units)
    assert progress.step(90.0, "sweep").endswith("~1:20 left]")  # (60 + 90 + 10) / 2


def test_steps_that_found_their_work_done_count_as_done_but_not_in_the_pace() -> None:
    """A resumed run: its first two trainings were done before."""
    progress = Progress()
    progress.begin(["train"] * 4 + ["sweep"], jobs=1, weights={"train": 1.0, "sweep": 0.5})
    line = progress.step(1.0, "train", found_done=True)
    assert line.endswith("[1/5, 0:00 spent, time left not known yet]")
    progress.step(4.0, "train", found_done=True)
    # the pace is the one real training's: 60 s for the one left, 30 s for the sweep
    assert progress.step(60.0, "train").endswith("[3/5, 0:00 spent, ~1:30 left]")
    progress.step(60.0, "train")
    assert progress.step(2.0, "sweep").endswith("[5/5, 0:00 spent, ~0:00 left]")


def test_a_step_found_done_is_told_by_its_log_not_by_its_time(tmp_path: Path) -> None:
    """Jobs log what they skip, write and fail (dkp.runtime.jobs); a quick report step that
    logs none of it ran, and counts in the pace however short it was."""
    log = "[2026-12-07 00:47:44,807][dkp.runtime.jobs][INFO] - {}: /runs/sweeps/teacher/{}"
    skipped = [log.format("already done, skipping", f"{i}/job.json") for i in range(3)]
    wrote = log.format("results", "3/results.json")
    failed = "[...][dkp.runtime.jobs][ERROR] - job failed (ValueError: bad); the sweep goes on"
    cases = {"all_skipped": skipped, "one_ran": [*skipped, wrote], "one_failed": [*skipped,
             failed], "report": ["curves: outputs/figures/curves.png"], "empty": []}  # fmt: skip
    for name, lines in cases.items():
        (tmp_path / f"{name}.log").write_text("".join(f"{line}\n" for line in lines))
    assert [n for n in cases if found_done(tmp_path / f"{n}.log")] == ["all_skipped"]
    assert not found_done(tmp_path / "missing.log")

    progress = Progress(["report", "report", "train"])
    steps = [
        sh(tmp_path, "resumed", f"echo '{skipped[0]}'", kind="report"),
        sh(tmp_path, "report", "true", kind="report"),
    ]
    run_steps(steps, CommandRunner(fork=False), say=lambda _: None, progress=progress)
    assert progress.took.keys() == {"report"} and len(progress.took["report"]) == 1


def test_one_at_a_time_follows_the_given_order(tmp_path: Path) -> None:
    order = tmp_path / "order"
    steps = [sh(tmp_path, n, f"echo {n} >> {order}") for n in ("first", "second", "third")]
    run_steps(steps, CommandRunner(fork=False), jobs=1, say=lambda _: None)
    assert order.read_text().split() == ["first", "second", "third"]


def test_a_failure_lets_the_running_step_finish_and_starts_nothing_new(tmp_path: Path) -> None:
    slow, never = tmp_path / "slow", tmp_path / "never"
    steps = [
        sh(tmp_path, "slow", f"sleep 0.5; touch {slow}"),
        sh(tmp_path, "broken", "echo bad input >&2; exit 3"),
        sh(tmp_path, "later", f"touch {never}"),
        sh(tmp_path, "after_broken", f"touch {never}", needs=("broken",)),
    ]
    with pytest.raises(StepFailed) as failed:
        run_steps(steps, CommandRunner(fork=False), jobs=2, say=lambda _: None)
    assert failed.value.status == 3 and failed.value.step.name == "broken"
    assert str(failed.value) == f"broken failed (3); log {tmp_path / 'logs' / 'broken.log'}"
    assert (tmp_path / "logs" / "broken.log").read_text() == "bad input\n"
    assert slow.exists() and not never.exists()


def test_steps_that_cannot_run_are_named(tmp_path: Path) -> None:
    runner = CommandRunner(fork=False)
    with pytest.raises(ValueError, match="step 'b' needs 'x', which is not a step"):
        run_steps([sh(tmp_path, "a", "true"), sh(tmp_path, "b", "true", ("x",))], runner)
    with pytest.raises(ValueError, match="two steps are named 'a'"):
        run_steps([sh(tmp_path, "a", "true"), sh(tmp_path, "a", "true")], runner)
    loop = [sh(tmp_path, "a", "true", ("b",)), sh(tmp_path, "b", "true", ("a",))]
    with pytest.raises(ValueError, match="steps that need each other: a, b"):
        run_steps(loop, runner)
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        run_steps([], runner, jobs=0)
