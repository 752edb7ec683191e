"""The SLURM launcher preset against the installed hydra-submitit-launcher and submitit: every
field is one they take, and the sbatch script they write asks for what the trainer runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_config

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]


def sbatch_script(launcher_cfg, folder: Path) -> str:
    """The sbatch script the submitit launcher writes for one job of ``launcher_cfg``, mapped
    to submitit's parameters the way the plugin's ``launch`` maps them."""
    submitit = pytest.importorskip("submitit", reason="pip install -e '.[launchers]'")
    plugin = pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher.config", reason="pip install -e '.[launchers]'"
    )
    params = OmegaConf.to_container(launcher_cfg, resolve=True)
    params.pop("_target_")
    params.pop("submitit_folder")
    init = {"slurm_max_num_timeout": params.pop("max_num_timeout")}
    base = set(OmegaConf.structured(plugin.BaseQueueConf).keys())
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", **init)
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    return executor._executor._make_submission_file_text("python -u job.py", "uid")


def test_the_preset_is_the_installed_plugins_launcher_with_fields_it_takes(tmp_path):
    from hydra.utils import get_class

    cfg = compose_config(
        "train", ["trainer=ddp_multinode", "hydra/launcher=slurm", "data.num_workers=6"], tmp_path
    )
    launcher = get_class(cfg.hydra.launcher._target_)
    assert launcher.__name__ == "SlurmLauncher"
    script = sbatch_script(cfg.hydra.launcher, tmp_path)
    for flag in (
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gpus-per-node=4",
        "--cpus-per-task=6",
        "--requeue",
        "--time=1440",
        "--signal=USR2@120",
    ):
        assert f"#SBATCH {flag}\n" in script, flag


def test_on_cpu_the_documented_overrides_ask_for_no_gpus(tmp_path):
    cfg = compose_config(
        "eval",
        ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", "data.num_workers=0"]
        + ["hydra.launcher.cpus_per_task=1", "ckpt_path=x.ckpt"],
        tmp_path,
    )
    script = sbatch_script(cfg.hydra.launcher, tmp_path)
    assert "gpus" not in script and "#SBATCH --cpus-per-task=1\n" in script


def test_the_docs_name_the_launcher_one_way():
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for path in docs:
        text = path.read_text(encoding="utf-8")
        assert "launcher=submitit_slurm" not in text, path
    assert "hydra/launcher=slurm" in (REPO / "README.md").read_text(encoding="utf-8")
