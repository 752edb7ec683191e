"""``dkp-data``'s two commands, from config overrides to the lines they print.

Each composes the training config (so it lists exactly the videos training reads), runs the
check or the preparation and returns what the command prints; config mistakes and unusable
files raise one-line errors (ValueError, OSError, Hydra's) for the command to print.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dkp.data.preparation.listing import list_dataset
from dkp.data.preparation.manifest import RenditionSettings
from dkp.runtime.config import compose

#: Failures named on the terminal; the manifest has them all.
FAILURES_SHOWN = 20


def check_command(
    overrides: Sequence[str],
    report_path: str | os.PathLike,
    workers: int = 0,
    probes: int = 8,
    splits: Sequence[str] | None = None,
    progress: bool = True,
) -> str:
    """Check every video the config of ``overrides`` lists into the report at
    ``report_path``; returns its summary table and how to use it."""
    from dkp.data.preparation.check import check_dataset

    listing = list_dataset(compose("train", list(overrides)), splits)
    report, measured = check_dataset(listing, report_path, workers, probes, progress)
    lines = [
        report.summary(),
        "",
        f"{measured} files checked now, {len(report.entries) - measured} unchanged.",
        f"report: {report_path}",
    ]
    if report.bad():
        lines.append(f"leave out the videos with errors: data.exclude_report={report_path}")
    return "\n".join(lines)


def prepare_command(
    overrides: Sequence[str],
    folder: str | os.PathLike,
    settings: RenditionSettings,
    workers: int = 0,
    force: bool = False,
    splits: Sequence[str] | None = None,
    progress: bool = True,
) -> str:
    """Prepare every video the config of ``overrides`` lists into the copy at ``folder`` with
    ``settings``; returns what was done, the failures and how to read the copy."""
    from dkp.data.preparation.prepare import prepare_dataset

    listing = list_dataset(compose("train", list(overrides)), splits, originals=True)
    _, summary = prepare_dataset(listing, folder, settings, workers, force, progress)
    lines = [summary.line()]
    lines += [f"  failed: {failure}" for failure in summary.failures[:FAILURES_SHOWN]]
    if summary.failed > FAILURES_SHOWN:
        lines.append(f"  ... {summary.failed - FAILURES_SHOWN} more in {folder}/manifest.json")
    lines.append(f"read it with: data.prepared={folder}")
    return "\n".join(lines)
