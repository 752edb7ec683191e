"""Config values checked against what their targets accept, before anything is built.

Every node with a ``_target_`` names a callable; its signature says which keys it takes and
their types. A key it does not take, or a value of the wrong type, is a one-line
:class:`ConfigError` naming the field (``trainer.max_epochs: 'abc' is not an int``), raised
before any data is touched, instead of a traceback from deep inside a run.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the field's dotted name."""


@cache
def _signature(target: str) -> tuple[dict[str, Any], bool, str] | None:
    """(parameter -> type hint, takes **kwargs, name) of the callable ``target`` names."""
    try:
        obj = get_object(target)
    except Exception:
        return None
    function: Callable = obj.__init__ if inspect.isclass(obj) else obj
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    names = {n: hints.get(n, Any) for n, p in parameters.items() if n != "self"}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return names, takes_any, f"{obj.__module__}.{obj.__qualname__}"


def _matches(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` (a plain config value) fits ``hint``; None where that is not known."""
    if hint is Any or hint is inspect.Parameter.empty:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_matches(value, h) for h in typing.get_args(hint)]
        if any(v is True for v in verdicts):
            return True
        return None if any(v is None for v in verdicts) else False
    if origin is typing.Literal:
        return value in typing.get_args(hint) and type(value) in {
            type(a) for a in typing.get_args(hint)
        }
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    base = origin or hint
    if base in (list, tuple, typing.Sequence):
        return isinstance(value, (list, tuple)) or None
    if base in (dict, typing.Mapping):
        return isinstance(value, dict) or None
    return None


def _describe(hint: Any) -> str:
    """``int | None`` as "an int or null", literals as "one of 'a', 'b'"."""
    names = {bool: "a bool", int: "an int", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    parts = typing.get_args(hint) if union else (hint,)
    literals = [
        v for p in parts if typing.get_origin(p) is typing.Literal for v in typing.get_args(p)
    ]
    kinds = [p for p in parts if typing.get_origin(p) is not typing.Literal and p is not type(None)]
    words = [names.get(k, getattr(k, "__name__", str(k))) for k in kinds]
    if literals:
        words.append("one of " + ", ".join(map(repr, literals)))
    return " or ".join(words + (["null"] if type(None) in parts else []))


def check_node(node: Any, where: str) -> None:
    """Check every ``_target_`` node under ``node`` (a config subtree called ``where``)."""
    if isinstance(node, ListConfig):
        for i, item in enumerate(node):
            check_node(item, f"{where}[{i}]")
        return
    if not isinstance(node, DictConfig):
        return
    target = node.get("_target_") if "_target_" in node else None
    signature = _signature(target) if isinstance(target, str) else None
    for key in node:
        field = f"{where}.{key}" if where else str(key)
        if OmegaConf.is_missing(node, key):
            continue
        try:
            value = node[key]
        except OmegaConfBaseException:  # unresolvable here (outside a run): not judged
            continue
        if signature is not None and key not in HYDRA_KEYS:
            params, takes_any, name = signature
            if key not in params and not takes_any:
                close = difflib.get_close_matches(str(key), list(params), n=3)
                hint_ = f"; did you mean {' or '.join(close)}?" if close else ""
                raise ConfigError(f"{field}: {name} has no option {key!r}{hint_}")
            hint = params.get(key, Any)
            try:
                plain = (
                    OmegaConf.to_container(value, resolve=True)
                    if OmegaConf.is_config(value)
                    else value
                )
            except OmegaConfBaseException:
                continue
            if _matches(plain, hint) is False:
                raise ConfigError(f"{field}: {plain!r} is not {_describe(hint)}")
        if isinstance(node._get_node(key), (DictConfig, ListConfig)):
            check_node(value, field)


def check_config(
    cfg: DictConfig, groups: tuple[str, ...] = ("sampling", "data", "model", "trainer")
) -> None:
    """Check the config groups a task builds (see the module docstring)."""
    for group in groups:
        if group in cfg:
            check_node(cfg[group], group)
