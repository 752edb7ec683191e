"""Tiny datasets in each official layout: annotation files as released, and small videos."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
from PIL import Image

# Kinetics-style names (spaces, parentheses); the other formats use their own spelling.
CLASSES = ["juggling balls", "playing (guitar)", "archery"]
CODECS = {".mp4": "libx264", ".mkv": "libx264", ".webm": "libvpx", ".avi": "mpeg4"}


def frames(count: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """``count`` RGB frames of smooth colour, a different colour per seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    ramp = np.linspace(0, 60, count)[:, None, None, None]
    return np.broadcast_to(base + ramp, (count, size, size, 3)).clip(0, 255).astype(np.uint8)


def write_video(path: Path, count: int = 8, fps: int = 4, seed: int = 0) -> Path:
    """A ``count / fps`` seconds video (2 s by default), codec chosen by the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODECS[path.suffix], rate=fps)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for array in frames(count, seed=seed):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_frames(folder: Path, count: int = 6, seed: int = 0) -> Path:
    """A folder of JPEG frames 00001.jpg ... as Something-Something v1 ships them."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(frames(count, seed=seed), start=1):
        Image.fromarray(array).save(folder / f"{i:05d}.jpg", quality=90)
    return folder


def kinetics(root: Path, videos: bool = True) -> Path:
    """Kinetics-400 CSVs (2 train, 1 val clip per class), clips, and Mini-Kinetics lists."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "val": []}
    for c, label in enumerate(CLASSES):
        for split, count in (("train", 2), ("val", 1)):
            for i in range(count):
                youtube_id = f"{split[:2]}{c}{i}abcdefg"[:11]
                rows[split].append((label, youtube_id, 10 * i, 10 * i + 10))
                if videos:
                    name = f"{youtube_id}_{10 * i:06d}_{10 * i + 10:06d}.mp4"
                    write_video(root / split / name, seed=c)
    for split, entries in rows.items():
        lines = ["label,youtube_id,time_start,time_end,split,is_cc"]
        lines += [f'"{lab}",{yid},{s},{e},{split},0' for lab, yid, s, e in entries]
        (root / "annotations" / f"{split}.csv").write_text("\n".join(lines) + "\n")
    mini = root / "mini_kinetics"
    mini.mkdir(exist_ok=True)
    for split, entries in rows.items():
        text = "\n".join(yid for _, yid, _, _ in entries) + "\n"
        (mini / f"{split}_ytid_list.txt").write_text(text)
    return root


def ucf_name(label: str) -> str:
    return "".join(word.capitalize() for word in label.replace("(", "").replace(")", "").split())


def ucf101(root: Path) -> Path:
    """ucfTrainTestlist/ (split 1) and UCF-101/<Class>/v_<Class>_gNN_c01.avi, 3 per class."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    names = [ucf_name(label) for label in CLASSES]
    (lists / "classInd.txt").write_text(
        "".join(f"{i} {name}\r\n" for i, name in enumerate(names, start=1))
    )
    train, test = [], []
    for c, name in enumerate(names):
        for group in (8, 9, 1):
            rel = f"{name}/v_{name}_g{group:02d}_c01.avi"
            write_video(root / "UCF-101" / rel, seed=c)
            (test if group < 8 else train).append(rel)
    (lists / "trainlist01.txt").write_text(
        "".join(f"{rel} {names.index(rel.split('/')[0]) + 1}\r\n" for rel in train)
    )
    (lists / "testlist01.txt").write_text("".join(f"{rel}\r\n" for rel in test))
    return root


def hmdb_name(label: str) -> str:
    return label.split()[0].replace("(", "")


def hmdb51(root: Path) -> Path:
    """testTrainMulti_7030_splits/<class>_test_split1.txt and videos/<class>/*.avi."""
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for c, label in enumerate(CLASSES):
        name = hmdb_name(label)
        lines = []
        for i, flag in enumerate((1, 1, 2, 0)):
            video = f"{name}_clip_{i}.avi"
            lines.append(f"{video} {flag} \n")
            if flag:
                write_video(root / "videos" / name / video, seed=c)
        (splits / f"{name}_test_split1.txt").write_text("".join(lines))
    return root


def sthv2_template(label: str) -> str:
    return f"{label.split()[0].capitalize()} [something]"


def sthv2(root: Path) -> Path:
    """something-something-v2-{labels,train,validation}.json and <id>.webm videos."""
    templates = [sthv2_template(label) for label in CLASSES]
    names = [t.replace("[", "").replace("]", "") for t in templates]
    labels = {name: str(i) for i, name in enumerate(names)}
    (root / "something-something-v2-labels.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "something-something-v2-labels.json").write_text(json.dumps(labels))
    video_id = 1000
    for split, count in (("train", 2), ("validation", 1)):
        entries = []
        for c, template in enumerate(templates):
            for _ in range(count):
                video_id += 1
                filled = template.replace("[something]", "a cup")
                entries.append(
                    {"id": str(video_id), "label": filled, "template": template,
                     "placeholders": ["a cup"]}
                )  # fmt: skip
                write_video(root / "20bn-something-something-v2" / f"{video_id}.webm", seed=c)
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(entries))
    return root


def sthv1(root: Path) -> Path:
    """something-something-v1-{labels,train,validation}.csv and JPEG frame folders."""
    names = [sthv2_template(label).replace("[", "").replace("]", "") for label in CLASSES]
    root.mkdir(parents=True, exist_ok=True)
    (root / "something-something-v1-labels.csv").write_text("\n".join(names) + "\n")
    video_id = 1
    for split, count in (("train", 2), ("validation", 1)):
        lines = []
        for c, name in enumerate(names):
            for _ in range(count):
                video_id += 1
                lines.append(f"{video_id};{name}")
                write_frames(root / "20bn-something-something-v1" / str(video_id), 12, seed=c)
        (root / f"something-something-v1-{split}.csv").write_text("\n".join(lines) + "\n")
    return root


# The data config of each format and the layout that fixture writes.
LAYOUTS = {
    "kinetics400": kinetics,
    "minikinetics": kinetics,
    "ucf101": ucf101,
    "hmdb51": hmdb51,
    "sthv2": sthv2,
    "sthv1": sthv1,
}
