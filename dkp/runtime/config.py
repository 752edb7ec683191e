"""Hydra configs: where they live (inside the package), composing them, building objects.

The configs ship in the wheel (``dkp/conf``), so every command finds them through the
package, whatever the working directory and however dkp was installed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/<config_name>.yaml`` with ``overrides``, composed outside a Hydra run (a
    notebook, a test, a benchmark); ``paths.root_dir`` is ``$DKP_ROOT`` or the working
    directory, as a run would set it."""
    root = f"paths.root_dir={os.environ.get('DKP_ROOT', os.getcwd())}"
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
            return hydra_compose(config_name, overrides=[root, *overrides])
    finally:
        GlobalHydra.instance().clear()


def build_object(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, re-raising our own config errors as themselves.

    Hydra wraps every error raised by a target in ``InstantiationException``; a wrong
    config value should reach the user as the ValueError (or missing-file error) that
    names the field, not as a wrapper around it.
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException):  # nested targets wrap it again
            cause = cause.__cause__
        if isinstance(cause, (ValueError, FileNotFoundError)):
            raise cause from None
        raise


def build_group(group: DictConfig | None) -> list[Any]:
    """Build every entry of a dict-of-configs group (callbacks, loggers)."""
    if not group:
        return []
    return [build_object(node) for node in group.values() if node and "_target_" in node]
