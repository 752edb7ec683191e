"""Paper-scale samples from a prepared copy against what users would pick instead.

One paper-scale DKP sample is 20 frames at 112x112 and 5 at 224x224 from one video, at
training's random times (one per equal segment), read in one call. It is read from the
originals (ActivityNet-like: 720p and 360p H.264 at 29.97/30 fps with B-frames, keyframes every
250 or 60 frames, an AAC track), from ``dkp-data prepare`` renditions at several keyframe
intervals, from FrameExit-style JPEG frames at the renditions' frame rate and size (the
frame-folder reader) and with decord where it is installed. Rates are per core: each sample's
CPU time (``time.process_time``; all readers run one thread), so other load on a shared machine
does not count against them; methods alternate sample by sample. Bytes on disk are per hour of
video. DataLoader throughput is wall-clock, from 1 to 2 workers.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import Interpolation
from PIL import Image

from benchmarks import inputs
from dkp.data.annotations.records import VideoRecord
from dkp.data.dataset import VideoClipDataset, collate_clips
from dkp.data.decoding import FrameFolderReader, FrameRequest, PyAVReader
from dkp.data.preparation.manifest import RenditionSettings
from dkp.data.preparation.prepare import prepare_video, rendition_size
from dkp.data.sampling import build_sampling

try:  # optional: compared only where it installs (pip install decord)
    import decord
except ImportError:  # pragma: no cover - depends on the machine
    decord = None

GOPS = (1, 4, 16)  # renditions' keyframe intervals: all-intra, short, longer
SHORT_SIDE = RenditionSettings().short_side
JPEG_QUALITY = 95  # FrameExit extracts with FFmpeg's -q:v 2, its near-best JPEG quality
N_S, N_T, S_SIZE, T_SIZE = 20, 5, 112, 224
TARGET_PER_CORE = 60.0


def sources(seconds: float) -> list[inputs.VideoSpec]:
    """ActivityNet-like originals: 720p at 2 Mbit/s and 360p at 0.7 Mbit/s, keyframes every 250
    frames at 29.97 fps and every 60 at 30 fps, B-frames, an AAC track."""
    out = []
    for height, kbits in ((720, 2000), (360, 700)):
        for gop, fps in ((250, Fraction(30000, 1001)), (60, Fraction(30))):
            width = height * 16 // 9
            out.append(
                inputs.VideoSpec("h264", gop, width, height, seconds, fps, "natural", kbits, True)
            )
    return out


def sample_times(duration: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Training's times (one random time per equal segment) for the student and the teacher."""
    return tuple((np.arange(n) + rng.random(n)) * duration / n for n in (N_S, N_T))


def requests(student: np.ndarray, teacher: np.ndarray) -> list[FrameRequest]:
    return [
        FrameRequest(tuple(student.tolist()), S_SIZE, S_SIZE),
        FrameRequest(tuple(teacher.tolist()), T_SIZE, T_SIZE),
    ]


def write_jpegs(source: Path, folder: Path) -> Path:
    """Every frame of ``source`` at the renditions' size as JPEG, as FrameExit extracts."""
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        size = rendition_size(stream.width, stream.height, SHORT_SIDE)
        for i, frame in enumerate(container.decode(stream)):
            rgb = frame.reformat(*size, "rgb24", interpolation=Interpolation.AREA).to_ndarray()
            Image.fromarray(rgb).save(folder / f"{i + 1:06d}.jpg", quality=JPEG_QUALITY)
    (folder / "done").touch()
    return folder


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*.jpg"))


def decord_sample(path: Path, fps: float, student: np.ndarray, teacher: np.ndarray) -> None:
    """decord as datasets use it: a VideoReader per sample, all 25 frames at 224 in one batch,
    the student's resized to 112 afterwards. None: decord does not count what it decodes."""
    reader = decord.VideoReader(str(path), width=T_SIZE, height=T_SIZE, num_threads=1)
    times = np.concatenate([student, teacher])
    frames = reader.get_batch(np.clip((times * fps).astype(int), 0, len(reader) - 1).tolist())
    for rgb in frames.asnumpy()[:N_S]:
        Image.fromarray(rgb).resize((S_SIZE, S_SIZE), Image.BILINEAR)


def per_core(methods: dict[str, Callable[[np.random.Generator], int]], samples: dict[str, int]):
    """CPU seconds per sample and frames decoded per sample of each method; methods alternate
    sample by sample, each with its own random times."""
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    decoded: dict[str, list[int]] = {m: [] for m in methods}
    rngs = {m: np.random.default_rng(7) for m in methods}
    for rep in range(max(samples.values())):
        for name, method in methods.items():
            if rep < samples[name]:
                began = time.process_time()
                decoded[name].append(method(rngs[name]))
                cpu[name].append(time.process_time() - began)
    return {
        m: {
            "cpu_s": statistics.median(cpu[m]),
            "per_core": 1.0 / statistics.median(cpu[m]),
            "decoded": None if None in decoded[m] else statistics.mean(decoded[m]),
        }
        for m in methods
    }


def measure_source(spec: inputs.VideoSpec, quick: bool) -> dict:
    """Prepare one original every way, then time paper-scale samples from each."""
    source = inputs.ensure(spec)
    work = inputs.CACHE / "preparation" / source.stem
    index_dir = work / "index"
    duration = PyAVReader(index_dir=index_dir).probe(source).duration
    hour = 3600.0 / duration
    rows = {"original": {"bytes_hour": source.stat().st_size * hour}}
    paths = {"original": source}
    for gop in GOPS:
        settings = RenditionSettings(gop=gop)  # the defaults otherwise
        name = f"gop{gop}.mp4"
        if not (work / name).exists():
            reader = PyAVReader(index_dir=index_dir)
            entry = prepare_video((str(source), name), reader, str(work), settings)
            assert not entry.error, entry.error
            rows[f"gop {gop}"] = {"prepare_s": entry.seconds}
        rows.setdefault(f"gop {gop}", {})["bytes_hour"] = (work / name).stat().st_size * hour
        paths[f"gop {gop}"] = work / name
    began = time.perf_counter()
    jpegs = write_jpegs(source, work / "jpeg")
    extract_s = time.perf_counter() - began
    rows["jpeg"] = {"bytes_hour": folder_bytes(jpegs) * hour, "extract_s": extract_s}
    fps = float(spec.fps)

    def pyav(path: Path) -> Callable[[np.random.Generator], int]:
        PyAVReader(index_dir=index_dir).ensure_index(path)

        def sample(rng: np.random.Generator) -> int:
            reader = PyAVReader(threads=1, skip_nonref=True, index_dir=index_dir)
            reader.read(path, requests(*sample_times(duration, rng)))
            return reader.stats.decoded_frames

        return sample

    def jpeg(rng: np.random.Generator) -> int:
        reader = FrameFolderReader(fps)
        reader.read(jpegs, requests(*sample_times(duration, rng)))
        return reader.stats.decoded_frames

    methods = {name: pyav(path) for name, path in paths.items()}
    methods["jpeg"] = jpeg
    if decord is not None:
        methods["decord"] = lambda rng: decord_sample(source, fps, *sample_times(duration, rng))
        rows["decord"] = {"bytes_hour": rows["original"]["bytes_hour"]}
    many = 12 if quick else 40
    samples = {m: many for m in methods}
    samples["original"] = 3 if quick else 8
    if "decord" in samples:
        samples["decord"] = samples["original"]
    for name, figures in per_core(methods, samples).items():
        rows[name].update(figures)
    for name, psnr in fidelity(source, duration, fps, paths, jpegs).items():
        rows[name]["psnr"] = psnr
    base = rows["original"]["per_core"]
    for row in rows.values():
        if "per_core" in row:
            row["x_original"] = row["per_core"] / base
    return {"video": spec.name, "seconds": duration, "rows": rows}


def fidelity(source: Path, duration: float, fps: float, paths: dict, jpegs: Path) -> dict:
    """PSNR (dB) of each copy's teacher input (224x224) against the original's, at 12 times."""
    times = tuple(np.linspace(0.02, 0.98, 12) * duration)
    request = [FrameRequest(times, T_SIZE, T_SIZE)]

    def psnr(frames: np.ndarray) -> float:
        error = np.mean((frames.astype(np.float64) - reference) ** 2)
        return float(10 * np.log10(255**2 / error)) if error else float("inf")

    reference = PyAVReader().read(source, request)[0].astype(np.float64)
    out = {n: psnr(PyAVReader().read(p, request)[0]) for n, p in paths.items() if n != "original"}
    out["jpeg"] = psnr(FrameFolderReader(fps).read(jpegs, request)[0])
    return out


def loader_scaling(path: Path, duration: float, index_dir: Path, batches: int) -> dict:
    """Paper-scale samples/s of a DataLoader over renditions with 1 and 2 workers: wall clock,
    and per CPU second of the workers (``RUSAGE_CHILDREN`` once they have exited), which
    stays flat when nothing inside the loader limits scaling, however busy the machine is."""
    import resource

    sampling = build_sampling("adaptive", n_t=N_T, ratio=N_S // N_T)
    record = VideoRecord("v", path, duration, (0,), "training")
    PyAVReader(index_dir=index_dir).ensure_index(path)
    wall, per_cpu = {}, {}
    for workers in (1, 2):
        reader = PyAVReader(threads=1, skip_nonref=True, index_dir=index_dir)
        dataset = VideoClipDataset([record] * (16 * (batches + 2)), sampling, reader, training=True)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=16,
            num_workers=workers,
            collate_fn=lambda items: collate_clips(items, 1),
            persistent_workers=False,
        )
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        it = iter(loader)
        next(it), next(it)  # workers started, first batches in
        began = time.perf_counter()
        for _ in range(batches):
            next(it)
        wall[workers] = 16 * batches / (time.perf_counter() - began)
        del it  # the workers exit and are reaped: their CPU time is counted
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        per_cpu[workers] = len(dataset) / cpu if cpu > 0 else float("nan")
    load = os.getloadavg()[0]  # other work on the machine: wall-clock rates cannot scale past it
    return {
        "samples_s": wall,
        "x_two_workers": wall[2] / wall[1],
        "samples_per_worker_cpu_s": per_cpu,
        "cpu_x_two_workers": per_cpu[2] / per_cpu[1],
        "load_average": load,
    }


def section(args, out: dict) -> list[str]:
    """The ``make bench`` section: one table per source, then the DataLoader's scaling."""
    from benchmarks import report

    seconds = 30.0 if args.quick else 120.0
    results = [measure_source(spec, args.quick) for spec in sources(seconds)]
    first = results[0]
    work = inputs.CACHE / "preparation" / inputs.ensure(sources(seconds)[0]).stem
    batches = 6 if args.quick else 16
    scaling = loader_scaling(work / "gop1.mp4", first["seconds"], work / "index", batches)
    out["preparation"] = {"sources": results, "loader": scaling, "decord": decord is not None}
    tables = []
    order = ["original", *[f"gop {g}" for g in GOPS], "jpeg", "decord"]
    for result in results:
        rows = result["rows"]
        jpeg_bytes = rows["jpeg"]["bytes_hour"]
        tables.append(
            report.table(
                f"Paper-scale samples ({N_S} at {S_SIZE} + {N_T} at {T_SIZE}), {result['video']}"
                f" ({result['seconds']:.0f} s, AAC track)",
                (
                    "read from",
                    "samples/s per core",
                    "x original",
                    "frames decoded",
                    "ms per frame",
                    "GB per video-hour",
                    "/ JPEG bytes",
                    "PSNR at 224, dB",
                    f">= {TARGET_PER_CORE:g}/s",
                ),
                [
                    (
                        name,
                        rows[name]["per_core"],
                        rows[name]["x_original"],
                        rows[name]["decoded"] or "-",
                        1000 * rows[name]["cpu_s"] / rows[name]["decoded"]
                        if rows[name]["decoded"]
                        else "-",
                        rows[name]["bytes_hour"] / 1e9,
                        rows[name]["bytes_hour"] / jpeg_bytes,
                        rows[name].get("psnr", "-"),
                        rows[name]["per_core"] >= TARGET_PER_CORE,
                    )
                    for name in order
                    if name in rows
                ],
            )
        )
    if decord is None:
        tables.append("\n(decord is not installed here: pip install decord to compare it)")
    tables.append(
        report.table(
            "DataLoader over all-intra renditions, paper-scale samples/s: wall clock, and per "
            "CPU second of its workers",
            (
                "1 worker",
                "2 workers",
                "x 2 workers",
                "per worker CPU s, 1 worker",
                "2 workers",
                "ratio",
                "load average (other work) after",
            ),
            [
                (
                    scaling["samples_s"][1],
                    scaling["samples_s"][2],
                    scaling["x_two_workers"],
                    scaling["samples_per_worker_cpu_s"][1],
                    scaling["samples_per_worker_cpu_s"][2],
                    scaling["cpu_x_two_workers"],
                    scaling["load_average"],
                )
            ],
        )
    )
    return tables


def gpu_decoding(seconds: float = 20.0) -> dict:
    """Frames/s of a whole decode of a long-GOP 720p original and of its all-intra rendition:
    on the CPU (one thread) and on an NVIDIA GPU's NVDEC (PyAV's CUDA hardware acceleration,
    no software fallback), or why NVDEC is unavailable."""
    from av.codec.hwaccel import HWAccel

    spec = sources(seconds)[0]
    source = inputs.ensure(spec)
    work = inputs.CACHE / "preparation" / source.stem
    rendition = work / "gop1.mp4"
    if not rendition.exists():
        reader = PyAVReader(index_dir=work / "index")
        prepare_video((str(source), rendition.name), reader, str(work), RenditionSettings())
    out: dict = {"video": spec.name, "seconds": seconds}
    for name, path in (("original", source), ("rendition", rendition)):
        for device in ("cpu", "nvdec"):
            accel = HWAccel("cuda", allow_software_fallback=False) if device == "nvdec" else None
            try:
                with av.open(str(path), hwaccel=accel) as container:
                    stream = container.streams.video[0]
                    stream.thread_count = 1 if device == "cpu" else 0
                    began = time.perf_counter()
                    frames = sum(1 for _ in container.decode(stream))
                out[f"{name}_{device}_fps"] = frames / (time.perf_counter() - began)
            except Exception as err:  # no GPU, no driver, an FFmpeg without NVDEC
                out[f"{name}_{device}_fps"] = f"unavailable: {type(err).__name__}: {err}"
    return out


if __name__ == "__main__":  # the optional NVDEC check of scripts/device_check.sh
    import json
    import sys

    if sys.argv[1:] != ["--gpu-decoding"]:
        sys.exit("usage: python -m benchmarks.preparation --gpu-decoding")
    print(json.dumps(gpu_decoding()))
