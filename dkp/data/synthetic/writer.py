"""Writing the dataset: encode every planned video, then the annotations and the manifest."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from dkp.data.synthetic.config import (
    ANNOTATION_NAME,
    BRIEF_GROUP,
    COARSE_GROUP,
    FINE_GROUP,
    GENERATOR_VERSION,
    MANIFEST_NAME,
    VIDEO_DIR,
    SyntheticConfig,
    class_groups,
)
from dkp.data.synthetic.plan import VideoPlan, plan_dataset
from dkp.data.synthetic.render import render_video
from dkp.runtime.atomic import write_json

log = logging.getLogger(__name__)
GENERATOR = "dkp.data.synthetic"  # recorded in the manifest


def _encode(config: SyntheticConfig, frames: np.ndarray, path: Path) -> None:
    import av

    gop = max(1, round(config.gop_seconds * config.fps))
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=config.fps)
        stream.width, stream.height, stream.pix_fmt = config.width, config.height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {
            "crf": str(config.crf),
            "preset": config.preset,
            "g": str(gop),
            "threads": "1",
            # x264's AVX-512 kernels make the output vary from run to run (seen with 64x64
            # frames on an AMD EPYC); its plain C code is deterministic on every CPU, and at
            # this size costs ~20 s more for the default dataset.
            "x264-params": "asm=0",
        }
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def probe_duration(path: str | Path) -> float:
    """A video file's duration in seconds, as PyAV (the container) reports it."""
    import av

    with av.open(str(path)) as container:
        if container.duration is not None:
            return container.duration / 1_000_000
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base)


def video_path(out_dir: str | Path, video_id: str) -> Path:
    return Path(out_dir) / VIDEO_DIR / f"v_{video_id}.mp4"


def _write_video(task: tuple[SyntheticConfig, VideoPlan, str]) -> tuple[str, float, int]:
    """Render, encode and probe one video (a worker's job); returns id, duration and bytes."""
    config, plan, out_dir = task
    final = video_path(out_dir, plan.video_id)
    tmp = final.with_name(f".{final.name}.tmp")
    _encode(config, render_video(config, plan), tmp)
    duration = probe_duration(tmp)
    os.replace(tmp, final)
    return plan.video_id, duration, final.stat().st_size


# ------------------------------------------------------------------------------- annotations


def taxonomy(config: SyntheticConfig) -> list[dict[str, Any]]:
    """Root -> the non-empty groups -> their classes, as ActivityNet taxonomy nodes."""
    nodes: list[dict[str, Any]] = [
        {"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}
    ]
    groups = class_groups(config)
    for group in (FINE_GROUP, BRIEF_GROUP, COARSE_GROUP):
        members = [name for name, g in groups if g == group]
        if not members:
            continue  # an empty group would read as a leaf class
        group_id = len(nodes)
        nodes.append({"nodeId": group_id, "nodeName": group, "parentId": 0, "parentName": "Root"})
        for name in members:
            nodes.append(
                {"nodeId": len(nodes), "nodeName": name, "parentId": group_id, "parentName": group}
            )
    return nodes


def annotations(
    config: SyntheticConfig, plans: list[VideoPlan], durations: dict[str, float]
) -> dict[str, Any]:
    """The ActivityNet v1.3 annotation object for ``plans`` with the measured ``durations``."""
    database = {}
    for plan in plans:
        database[plan.video_id] = {
            "subset": plan.subset,
            "duration": round(durations[plan.video_id], 6),
            "resolution": f"{config.width}x{config.height}",
            "url": f"https://www.youtube.com/watch?v={plan.video_id}",
            "annotations": [
                {
                    "segment": [round(s.start / config.fps, 6), round(s.end / config.fps, 6)],
                    "label": s.label,
                }
                for s in plan.segments
            ],
        }
    return {"version": "VERSION 1.3", "taxonomy": taxonomy(config), "database": database}


def _manifest(config: SyntheticConfig, complete: bool) -> dict[str, Any]:
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "annotation_file": ANNOTATION_NAME,
        "num_videos": config.num_videos,
        "config": asdict(config),
        "complete": complete,
    }


# -------------------------------------------------------------------------------------- entry


def generate(
    out_dir: str | Path,
    config: SyntheticConfig = SyntheticConfig(),
    workers: int = 2,
    force: bool = False,
) -> Path:
    """Write the dataset under ``out_dir`` and return the annotation file's path; files of
    the same names are overwritten (:func:`ensure_dataset` checks first that none is lost).

    The manifest says first that the writing is under way and last that it is complete, so
    an interrupted run leaves a directory that :func:`ensure_dataset` finishes. Videos are
    written under temporary names and renamed. With ``force``, ``videos/v_*.mp4`` files the
    annotations do not list (left by a dataset written with other parameters) are removed.
    """
    config.validate()
    out = Path(out_dir)
    videos = out / VIDEO_DIR
    videos.mkdir(parents=True, exist_ok=True)
    write_json(out / MANIFEST_NAME, _manifest(config, complete=False))
    started = time.perf_counter()
    plans = plan_dataset(config)
    # Longest first, so that the pool's last jobs are short ones.
    tasks = [(config, p, str(out)) for p in sorted(plans, key=lambda p: -p.num_frames)]
    # Spawned, not forked: the caller may hold threads (torch, loggers) that fork copies badly.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context) if workers > 1 else nullcontext()
    with pool:
        written = pool.map(_write_video, tasks) if workers > 1 else map(_write_video, tasks)
        bar = tqdm(written, total=len(tasks), desc=f"writing {out}", unit="video", mininterval=1)
        results = list(bar)
    durations = {vid: duration for vid, duration, _ in results}
    total_bytes = sum(size for _, _, size in results)

    keep = {video_path(out, p.video_id).name for p in plans}
    for stale in videos.glob("v_*.mp4") if force else ():
        if stale.name not in keep:
            stale.unlink()
    for tmp in videos.glob(".v_*.mp4.tmp"):
        tmp.unlink()

    annotation = out / ANNOTATION_NAME
    write_json(
        annotation, annotations(config, plans, durations), indent=None, separators=(",", ":")
    )
    write_json(out / MANIFEST_NAME, _manifest(config, complete=True))
    elapsed = time.perf_counter() - started
    log.info(
        "wrote %d videos (%.1f min of video, %.1f MB) and %s in %.1f s with %d worker(s)",
        len(plans),
        sum(durations.values()) / 60,
        total_bytes / 1e6,
        annotation,
        elapsed,
        workers,
    )
    return annotation


def dataset_differences(
    out_dir: str | Path, config: SyntheticConfig = SyntheticConfig()
) -> list[str]:
    """What makes the dataset in ``out_dir`` other than the one ``config`` and this version of
    the generator write, in words (empty: the same, complete or not)."""
    out = Path(out_dir)
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"it holds no {MANIFEST_NAME}, so no dataset dkp-synthetic wrote"]
    except (OSError, ValueError) as err:
        return [f"its {MANIFEST_NAME} cannot be read ({err})"]
    if not isinstance(manifest, dict) or manifest.get("generator") != GENERATOR:
        return [f"its {MANIFEST_NAME} is not one dkp-synthetic wrote"]
    differences = []
    if manifest.get("version") != GENERATOR_VERSION:
        differences.append(
            f"generator version: the dataset in {out} was written by version "
            f"{manifest.get('version')}, this is version {GENERATOR_VERSION}"
        )
    written = manifest.get("config")
    written = written if isinstance(written, dict) else {}
    wanted = json.loads(json.dumps(asdict(config)))  # tuples as the manifest holds them
    for name in sorted(set(written) | set(wanted)):
        theirs, ours = written.get(name, "nothing"), wanted.get(name, "nothing")
        if theirs != ours:
            differences.append(
                f"{name}: the dataset in {out} was written with {theirs}, the config asks for "
                f"{ours}"
            )
    return differences


def written_config(out_dir: str | Path) -> SyntheticConfig | None:
    """The parameters the dataset in ``out_dir`` was written with, if this version of the
    generator wrote it (else ``None``)."""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
        if manifest.get("generator") != GENERATOR or manifest.get("version") != GENERATOR_VERSION:
            return None
        return SyntheticConfig(**manifest["config"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def dataset_complete(out_dir: str | Path, config: SyntheticConfig = SyntheticConfig()) -> bool:
    """Whether the writing of the dataset in ``out_dir`` finished and left every video."""
    out = Path(out_dir)
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
        database = json.loads((out / ANNOTATION_NAME).read_text(encoding="utf-8"))["database"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("complete", True) is True  # manifests before the flag: complete
        and len(database) == config.num_videos
        and all(video_path(out, vid).is_file() for vid in database)
    )


def dataset_matches(out_dir: str | Path, config: SyntheticConfig = SyntheticConfig()) -> bool:
    """Whether ``out_dir`` holds a complete dataset generated with ``config`` by this version."""
    return not dataset_differences(out_dir, config) and dataset_complete(out_dir, config)


def ensure_dataset(
    out_dir: str | Path,
    config: SyntheticConfig = SyntheticConfig(),
    workers: int = 2,
    force: bool = False,
    default_dir: str | Path | None = None,
    as_written: bool = False,
) -> Path:
    """The annotation file of the dataset ``config`` describes in ``out_dir``: the one there,
    or written into a new or empty directory, or finished where a writing of it stopped.

    A directory holding anything else (another dataset, one written with other parameters
    or by another version) is never changed: that is a ``FileExistsError`` naming what
    differs, unless ``force`` (``dkp-synthetic --force``) replaces it. The data config adds
    ``as_written``: a dataset this version wrote is taken with the parameters its manifest
    records (``dkp-synthetic --event-spacing 3``, say), ``config`` only for a new one; and
    ``default_dir``: a missing ``out_dir`` other than it is refused as a mistyped
    ``data.root``.
    """
    out = Path(out_dir)
    if (
        not out.exists()
        and default_dir is not None
        and out.resolve() != Path(default_dir).resolve()
    ):
        raise FileNotFoundError(
            f"data.root: {out_dir} does not exist; data=synthetic writes the embedded dataset "
            f"only to {default_dir} (write one elsewhere with dkp-synthetic --out {out_dir})"
        )
    if force or not any(p.is_file() for p in out.rglob("*")):
        return generate(out, config, workers, force=force)
    if as_written:
        config = written_config(out) or config
    differences = dataset_differences(out, config)
    if differences:
        raise FileExistsError(
            f"{out} holds files that are not the synthetic dataset asked for, and they are "
            f"left as they are: {'; '.join(differences)}. Write it to another directory, or "
            f"replace them (deleting its videos) with dkp-synthetic --out {out} --force"
        )
    if dataset_complete(out, config):
        log.info("synthetic dataset in %s is up to date", out)
        return out / ANNOTATION_NAME
    log.info("finishing the synthetic dataset in %s, written with the same parameters", out)
    return generate(out, config, workers)
