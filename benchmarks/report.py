"""Tables for the terminal, results as JSON, and the comparison of two result files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable in a terminal, pasteable into the README)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.rjust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([f"\n### {title}\n", line(header), rule, *(line(r) for r in cells)])


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def save(results: dict, folder: Path, stamp: str) -> Path:
    """Write ``results`` to ``folder/<stamp>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=1))
    return path


def _flatten(node: object, prefix: str = "") -> dict[str, float]:
    if isinstance(node, dict):
        label = ",".join(f"{k}={node[k]}" for k in ("video", "arch", "n", "size") if k in node)
        here = f"{prefix}[{label}]" if label else prefix
        out: dict[str, float] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{here}.{key}" if here else key))
        return out
    if isinstance(node, list):
        out = {}
        for i, item in enumerate(node):
            out.update(_flatten(item, prefix if isinstance(item, dict) else f"{prefix}.{i}"))
        return out
    if isinstance(node, int | float) and not isinstance(node, bool):
        return {prefix: float(node)}
    return {}


def compare(a: Path, b: Path) -> str:
    """Every number present in both result files: A, B and B / A."""
    first, second = (_flatten(json.loads(p.read_text())) for p in (a, b))
    rows = [
        (key, first[key], second[key], second[key] / first[key] if first[key] else float("nan"))
        for key in first
        if key in second and not key.startswith("meta.")
    ]
    return table(f"{a.name} -> {b.name}", ("figure", "A", "B", "B / A"), rows)
