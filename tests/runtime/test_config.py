"""The configs ship inside the package; composed outside a run, paths resolve as in a run."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

import dkp
from dkp.runtime.config import CONFIG_DIR, compose


def test_configs_live_in_the_package():
    assert Path(CONFIG_DIR) == Path(dkp.__file__).parent / "conf"
    for name in ("train", "eval", "exits"):
        assert (Path(CONFIG_DIR) / f"{name}.yaml").is_file()


def test_a_config_composed_outside_a_run_resolves_its_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # as in a fresh process
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DKP_ROOT", raising=False)
    data = OmegaConf.to_container(compose("exits", ["ckpt_path=-"]).data, resolve=True)
    assert data["reader"]["index_dir"] == f"{tmp_path}/.cache/video_index"
    assert data["root"] == f"{tmp_path}/data/synthetic"
    monkeypatch.setenv("DKP_ROOT", str(tmp_path / "elsewhere"))
    data = OmegaConf.to_container(compose("exits", ["ckpt_path=-"]).data, resolve=True)
    assert data["reader"]["index_dir"] == f"{tmp_path}/elsewhere/.cache/video_index"
