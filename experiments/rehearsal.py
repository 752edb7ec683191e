"""`make rehearsal`: a real-size dataset through check, prepare and one paper-scale epoch.

Generates an ActivityNet-like dataset (720p H.264 at 29.97 or 30 fps, keyframes every 250 or 60
frames, B-frames, 2 Mbit/s, an AAC track; lengths drawn around ActivityNet's two-minute
average, times ``--length-scale``; a few per cent missing or broken the ways downloads are).
Two long videos are encoded, one per keyframe interval, and every video of the dataset is a
file of its own holding a prefix of one of them, cut at a keyframe (its streams copied, no re-
encoding), so a few hundred videos of real length cost two encodes. It then runs what a user
runs: ``dkp-data check``, ``dkp-data prepare`` (leaving out what the check found broken) and
one ``arch=paper`` epoch of the train split's data loading from the copy (no training). Writes
``rehearsal.json`` and ``rehearsal.md`` (the measured rates and the time a 20,000-video dataset
would take on 16 cores) under --out.

    python experiments/rehearsal.py --out outputs/rehearsal
    python experiments/rehearsal.py --videos 12 --length-scale 0.02 --height 144  # tiny
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ generates the videos
    sys.path.insert(0, str(ROOT))

from benchmarks import inputs  # noqa: E402
from dkp.runtime.atomic import write_json, write_text  # noqa: E402

ACTIVITYNET_MEAN_S = 117.0  # ActivityNet v1.3's mean video length (about two minutes)
BROKEN = {"zero_length": 0.01, "not_a_video": 0.01, "cut_short": 0.02, "audio_only": 0.005}
MISSING = 0.05
CLASSES = 20
SCALE_TO = (20_000, 16)  # the extrapolation: videos, cores


def lengths(count: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Video lengths (whole seconds): log-normal around ActivityNet's mean, within 10 s to
    10 min, scaled (3 s at least: a download cut short then still ends seconds early)."""
    raw = rng.lognormal(np.log(ACTIVITYNET_MEAN_S) - 0.18, 0.6, count).clip(10.0, 600.0)
    return np.maximum(np.round(raw * scale), 3.0)


def generate(folder: Path, count: int, scale: float, height: int, workers: int) -> dict:
    """The dataset: ``count`` annotated videos, some missing or broken; returns what was made."""
    from concurrent.futures import ProcessPoolExecutor

    rng = np.random.default_rng(0)
    durations = lengths(count, scale, rng)
    videos = folder / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    kinds = ["ok"] * count
    spots = iter(rng.permutation(count).tolist())
    for kind, share in [*BROKEN.items(), ("missing", MISSING)]:
        for _ in range(max(1, round(share * count))):
            kinds[next(spots)] = kind
    width = height * 16 // 9 // 2 * 2
    kbits = max(100, round(2000 * height * width / (1280 * 720)))
    longest = float(np.ceil(durations.max())) + 10.0
    masters = [
        inputs.VideoSpec("h264", gop, width, height, longest, fps, "natural", kbits, True)
        for gop, fps in ((60, Fraction(30)), (250, Fraction(30000, 1001)))
    ]
    began = time.perf_counter()
    with ProcessPoolExecutor(max(1, workers)) as pool:
        sources = list(pool.map(inputs.ensure, masters))
    keyframes = [_keyframe_times(source) for source in sources]
    jobs = []
    for i, (kind, seconds) in enumerate(zip(kinds, durations.tolist(), strict=True)):
        starts = keyframes[i % 2]  # the last keyframe at or before the length drawn, and
        # 4 s at least, so that a download cut at 60 % of its bytes ends seconds early
        cut = max(t for t in starts if t <= max(seconds, min(t for t in starts if t >= 4.0)))
        jobs.append((sources[i % 2], cut, videos / f"v_video{i:05d}.mp4", kind))
    with ProcessPoolExecutor(max(1, workers)) as pool:
        list(pool.map(_make, jobs))
    database = {
        f"video{i:05d}": {
            "subset": "training" if i % 10 < 7 else "validation",
            "duration": round(cut, 3),
            "annotations": [{"segment": [0.0, round(cut, 3)], "label": f"class{i % CLASSES}"}],
        }
        for i, (_, cut, _, _) in enumerate(jobs)
    }
    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    taxonomy += [
        {"nodeId": c + 1, "nodeName": f"class{c}", "parentId": 0, "parentName": "Root"}
        for c in range(CLASSES)
    ]
    annotations = {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database}
    write_json(folder / "activity_net.v1-3.min.json", annotations)
    return {
        "videos": count,
        "seconds_of_video": float(sum(cut for _, cut, _, _ in jobs)),
        "kinds": {k: kinds.count(k) for k in sorted(set(kinds))},
        "generate_s": time.perf_counter() - began,
    }


def _keyframe_times(source: Path) -> list[float]:
    """Seconds of the video stream's keyframes, from a demux pass."""
    import av

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        return sorted(
            float(packet.pts * stream.time_base)
            for packet in container.demux(stream)
            if packet.is_keyframe and packet.pts is not None
        )


def _make(job: tuple[Path, float, Path, str]) -> None:
    """Write one video of the dataset, broken the way its ``kind`` says."""
    source, cut, path, kind = job
    if path.exists() or kind == "missing":
        return
    partial = path.with_name(f"partial_{path.name}")
    if kind == "zero_length":
        partial.write_bytes(b"")
    elif kind == "not_a_video":
        partial.write_bytes(b"<html><body>This video is unavailable.</body></html>\n" * 50)
    elif kind == "audio_only":
        _audio_only(partial)
    else:  # a file of its own (checking and preparing it is work of its own)
        _prefix(source, partial, cut)
        if kind == "cut_short":  # an interrupted download: the index first, the data cut
            data = partial.read_bytes()
            partial.write_bytes(data[: len(data) * 6 // 10])
    partial.rename(path)


def _prefix(source: Path, target: Path, cut: float) -> None:
    """The first ``cut`` seconds of ``source`` (``cut`` a keyframe time), its packets copied
    into an MP4 whose index comes first. Keyframes are closed-GOP: every frame shown before
    the cut is decoded before it."""
    import av

    with (
        av.open(str(source)) as inp,
        av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        video = inp.streams.video[0].index
        ended = False
        for packet in inp.demux():
            if packet.dts is None or packet.pts is None:
                continue
            at = float(packet.pts * packet.time_base)
            if packet.stream.index == video:
                ended = ended or (packet.is_keyframe and at >= cut - 1e-6)
                if ended:
                    continue
            elif at >= cut:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


def _audio_only(path: Path) -> None:
    """A file with a sound track and no video, as a download of the audio alone is."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        tone = inputs.Tone(out)
        tone.until(Fraction(1))
        out.mux(tone.stream.encode())


def compose_data(root: Path, cache: Path, workers: int, extra: list[str]):
    from omegaconf import open_dict

    from dkp.runtime.config import compose

    cfg = compose(
        "train",
        [
            "data=activitynet",
            f"data.root={root}",
            f"data.num_classes={CLASSES}",
            "arch=paper",
            "sampling.n_t=5",
            "sampling.ratio=4",
            f"data.num_workers={workers}",
            "data.persistent_workers=false",
            *extra,
        ],
    )
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache)
    return cfg


def data_epoch(cfg) -> dict:
    """One epoch of the train split's batches, as training would load them (no training)."""
    from dkp.runtime.config import build_object

    module = build_object(cfg.data)
    module.setup("fit")
    loader = module.train_dataloader()
    began, samples, failed, batches = time.perf_counter(), 0, [], 0
    first = None
    for batch in loader:
        if first is None:
            first = time.perf_counter() - began
        batches += 1
        samples += len(batch.video_ids)
        failed += [video for video, _ in batch.failed]
    seconds = time.perf_counter() - began
    return {
        "batches": batches,
        "samples": samples,
        "failed": failed,
        "seconds": seconds,
        "first_batch_s": first,
        "samples_s": samples / seconds if seconds else 0.0,
        "workers": module.num_workers,
        "batch_size": module.batch_size,
    }


def run(args: argparse.Namespace) -> dict:
    from dkp.data.preparation.check import check_dataset
    from dkp.data.preparation.listing import list_dataset
    from dkp.data.preparation.manifest import RenditionSettings
    from dkp.data.preparation.prepare import prepare_dataset

    out = Path(args.out)
    root, copy, cache = out / "data", out / "prepared", out / "cache"
    report_path = out / "check.json"
    if args.fresh:
        for folder in (copy, cache, report_path):
            shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(
                missing_ok=True
            )
    made = generate(root, args.videos, args.length_scale, args.height, args.workers)
    print(f"dataset: {made}", flush=True)
    cfg = compose_data(root, cache, args.workers, [])
    began = time.perf_counter()
    report, measured = check_dataset(list_dataset(cfg), report_path, args.workers)
    check_s = time.perf_counter() - began
    print(report.summary(shown=10), flush=True)
    facts = [e.facts for e in report.entries.values() if not e.facts.error]
    checked = {
        "seconds": check_s,
        "measured": measured,
        "counts": report.counts(),
        "cpu_s": sum(f.cpu_seconds for f in facts),
        "video_s": sum(f.duration for f in facts),
        "per_video": [(f.duration, f.cpu_seconds) for f in facts],
    }
    cfg = compose_data(root, cache, args.workers, [f"data.exclude_report={report_path}"])
    began = time.perf_counter()
    settings = RenditionSettings(short_side=args.short_side, gop=args.gop)
    manifest, summary = prepare_dataset(
        list_dataset(cfg, originals=True), copy, settings, args.workers
    )
    renditions = [r for r in manifest.entries.values() if not r.error]
    prepared = {
        "seconds": time.perf_counter() - began,
        "made": summary.made,
        "failed": summary.failed,
        "failures": summary.failures,
        "cpu_s": sum(r.cpu_seconds for r in renditions),
        "video_s": sum(r.duration for r in renditions),
        "per_video": [(r.duration, r.cpu_seconds) for r in renditions],
        "source_bytes": summary.source_bytes,
        "rendition_bytes": summary.rendition_bytes,
    }
    print(summary.line(), flush=True)
    extra = [f"data.exclude_report={report_path}", f"data.prepared={copy}"]
    epoch = data_epoch(compose_data(root, cache, args.workers, extra))
    print(f"epoch: {epoch}", flush=True)
    results = {
        "machine": {"cores": os.cpu_count(), "workers": args.workers},
        "settings": vars(args),
        "dataset": made,
        "check": checked,
        "prepare": prepared,
        "epoch": epoch,
        "extrapolation": extrapolate(checked, prepared),
    }
    write_json(out / "rehearsal.json", results)
    write_text(out / "rehearsal.md", markdown(results))
    print(markdown(results))
    return results


def extrapolate(checked: dict, prepared: dict) -> dict:
    """Hours a 20,000-video dataset of ActivityNet's mean length takes on 16 cores, from each
    video's CPU seconds here: a least-squares line over the videos' lengths (a fixed cost per
    video plus one per second of video; each video is one core's work)."""
    videos, cores = SCALE_TO
    out = {}
    for name, step in (("check", checked), ("prepare", prepared)):
        lengths, cpu = np.array(step["per_video"], dtype=float).reshape(-1, 2).T
        if len(set(lengths.tolist())) > 1:
            per_s, fixed = np.polyfit(lengths, cpu, 1)
        else:  # one length: no line to fit, all of it counted per second
            per_s, fixed = cpu.sum() / max(lengths.sum(), 1e-9), 0.0
        per_s, fixed = max(float(per_s), 0.0), max(float(fixed), 0.0)
        per_video = fixed + per_s * ACTIVITYNET_MEAN_S
        out[name] = {
            "cpu_s_fixed": fixed,
            "cpu_s_per_video_s": per_s,
            "cpu_s_per_video": per_video,
            "hours_on_16_cores": per_video * videos / cores / 3600,
        }
    return out


def markdown(r: dict) -> str:
    d, c, p, e, x = r["dataset"], r["check"], r["prepare"], r["epoch"], r["extrapolation"]
    hours = d["seconds_of_video"] / 3600
    lines = [
        "| step | wall clock | rate | CPU s per video: fixed + per second of video |",
        "|---|---|---|---|",
        f"| check ({d['videos']} videos, {hours:.2f} h of video) | {c['seconds']:.0f} s | "
        f"{c['measured'] / c['seconds']:.2f} videos/s | "
        f"{x['check']['cpu_s_fixed']:.3f} + {x['check']['cpu_s_per_video_s']:.4f}/s CPU s |",
        f"| prepare ({p['made']} made, {p['failed']} failed) | {p['seconds']:.0f} s | "
        f"{p['made'] / p['seconds']:.2f} videos/s | "
        f"{x['prepare']['cpu_s_fixed']:.3f} + {x['prepare']['cpu_s_per_video_s']:.4f}/s CPU s |",
        f"| one arch=paper epoch from the copy ({e['samples']} samples, {e['workers']} workers) | "
        f"{e['seconds']:.0f} s | {e['samples_s']:.1f} samples/s | |",
        "",
        f"Extrapolated to {SCALE_TO[0]:,} videos of {ACTIVITYNET_MEAN_S:.0f} s on {SCALE_TO[1]} "
        f"cores: check {x['check']['hours_on_16_cores']:.1f} h, prepare "
        f"{x['prepare']['hours_on_16_cores']:.1f} h. Counts: {c['counts']}; the copy is "
        f"{p['rendition_bytes'] / max(p['source_bytes'], 1):.1%} of the originals' bytes; "
        f"videos that failed to load in the epoch: {len(e['failed'])}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="outputs/rehearsal")
    p.add_argument("--videos", type=int, default=300)
    p.add_argument("--length-scale", type=float, default=1.0, help="times ActivityNet lengths")
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--short-side", type=int, default=224, help="as dkp-data prepare's default")
    p.add_argument("--gop", type=int, default=1)
    p.add_argument("--fresh", action="store_true", help="check and prepare from scratch")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
