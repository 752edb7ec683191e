"""A real one-node SLURM cluster for the tests marked ``cluster`` (run by ``make test-cluster``).

The cluster comes from ``tests/cluster/slurm.sh up`` (idempotent: a running one is reused).
Where it cannot be started (not root, no Debian packages) or the submitit launcher is not
installed, the tests are skipped with the reason. They never run under ``make test`` or
``make test-slow``: only when ``-m`` names ``cluster``. Each has a hard time limit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM_SH = REPO / "tests" / "cluster" / "slurm.sh"
STATE_DIR = Path(os.environ.get("DKP_SLURM_DIR") or Path(tempfile.gettempdir()) / "dkp-slurm")
TEST_LIMIT_S = 420  # a test's hard limit; each command inside has a shorter one
# The tiny data on one CPU per SLURM task, no GPUs asked for, a short SLURM time limit.
FAST = [
    "data.prepare=null",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "torch_threads=1",
]
SLURM = [
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.timeout_min=15",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave cluster tests out unless ``-m`` names them (``make test-cluster``)."""
    if "cluster" in (config.getoption("markexpr") or ""):
        return
    dropped = [item for item in items if item.get_closest_marker("cluster")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("cluster")]


@pytest.fixture(autouse=True)
def hard_time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a cluster test that runs past :data:`TEST_LIMIT_S` instead of hanging CI."""
    if not request.node.get_closest_marker("cluster"):
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        pytest.fail(f"cluster test ran past its {TEST_LIMIT_S} s limit", pytrace=False)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def slurm_env() -> dict[str, str]:
    """The environment of a client of the test cluster (started here if need be)."""
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher",
        reason="the submitit launcher is not installed: pip install -e '.[launchers]'",
    )
    if shutil.which("bash") is None:
        pytest.skip("no bash to run tests/cluster/slurm.sh")
    try:
        up = subprocess.run(
            ["bash", str(SLURM_SH), "up"], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        pytest.skip("SLURM could not be started: tests/cluster/slurm.sh up timed out")
    if up.returncode != 0:
        pytest.skip(f"SLURM could not be started: {(up.stderr or up.stdout).strip()[-500:]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    env.update(SLURM_CONF=str(STATE_DIR / "etc" / "slurm.conf"), PYTHONPATH=str(REPO))
    env.pop("DKP_TEST_FAULTS", None)
    return env


def slurm(env: dict[str, str], *args: str, timeout: float = 30) -> str:
    """A SLURM client command's output (``squeue``, ``sacct``, ``scancel``, ``scontrol``)."""
    run = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    assert run.returncode == 0, f"{' '.join(args)}: {run.stderr.strip()}"
    return run.stdout


def wait_until(what: str, ready: Callable[[], object], timeout: float) -> object:
    """Poll ``ready`` until it gives something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_queue_empty(env: dict[str, str], timeout: float = 120) -> None:
    """Wait until no job is left in the test cluster's queue."""
    wait_until("the SLURM queue to empty", lambda: not slurm(env, "squeue", "-h").strip(), timeout)


def job_state(env: dict[str, str], job_id: str) -> str:
    """The accounting state of SLURM job ``job_id`` (``COMPLETED``, ``FAILED``, ...)."""
    out = slurm(env, "sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobIDRaw,State")
    states = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
    return states.get(job_id, "")


def final_state(env: dict[str, str], job_id: str, timeout: float = 60) -> str:
    """SLURM job ``job_id``'s state once accounting has it as ended (it lags the queue)."""
    running = ("PENDING", "RUNNING", "REQUEUED", "COMPLETING", "SUSPENDED", "")
    state = wait_until(
        f"job {job_id} to end in accounting",
        lambda: (s := job_state(env, job_id)) not in running and s,
        timeout,
    )
    return str(state)


def dkp(
    env: dict[str, str], cwd: Path, module: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m module -m ARGS`` through the SLURM launcher (the controller runs here)."""
    cmd = [sys.executable, "-m", module, "-m", *SLURM, *FAST, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def start(env: dict[str, str], cwd: Path, module: str, *args: str) -> subprocess.Popen:
    """:func:`dkp` without waiting (its output goes to ``cwd/controller.log``)."""
    cmd = [sys.executable, "-m", module, "-m", *SLURM, *FAST, *args]
    log = (cwd / "controller.log").open("w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)


def num_classes(root: Path) -> int:
    """The classes of an ActivityNet-layout dataset: its taxonomy's leaves."""
    taxonomy = json.loads((root / "activity_net.v1-3.min.json").read_text())["taxonomy"]
    parents = {node["parentId"] for node in taxonomy}
    return sum(node["nodeId"] not in parents for node in taxonomy)


@pytest.fixture(scope="session")
def teacher_ckpt(odd_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A teacher trained one step on :func:`odd_dataset` (here, not through SLURM)."""
    from dkp.runtime.jobs import run_job
    from dkp.tasks.train import train
    from tests.conftest import compose_config

    overrides = [
        *("experiment=teacher", "trainer.max_epochs=1", "trainer.limit_train_batches=1"),
        *("data.batch_size=4", "sampling.n_t=1", "test=false"),
        f"data.num_classes={num_classes(odd_dataset)}",
    ]
    out = tmp_path_factory.mktemp("teacher")
    return run_job(compose_config("train", overrides, out, odd_dataset), train).last_checkpoint
