"""HMDB-51 official splits (``testTrainMulti_7030_splits/``) to records.

One file per class and split, ``<class>_test_split<N>.txt``, lines ``<video>.avi <flag>``
with flag 1 = train, 2 = test, 0 = in neither. Classes are the class names of the split's
files, sorted. Videos are found as ``<root>/<class>/<video>.<ext>`` (the official layout)
or ``<root>/<video>.<ext>``. The files give no durations: they are probed from the videos
unless ``probe_durations`` is off and a ``nominal_duration`` is given.
"""

from __future__ import annotations

from pathlib import Path

from dkp.data.annotations.collector import (
    UNKNOWN,
    Collector,
    check_options,
    default_prober,
    find_video_in,
    numbered_lines,
)
from dkp.data.annotations.records import (
    VIDEO_EXTENSIONS,
    AnnotationError,
    RecordSet,
    VideoRecord,
    check_video_id,
)

FLAGS = {"training": "1", "testing": "2"}


def hmdb51_split_files(split_dir: str | Path, split: int = 1) -> dict[str, Path]:
    """Each class's split file, by class name, sorted by class name."""
    suffix = f"_test_split{split}.txt"
    files = {p.name[: -len(suffix)]: p for p in Path(split_dir).glob(f"*{suffix}")}
    if not files:
        raise AnnotationError(f"{split_dir}: no '*{suffix}' split files")
    return dict(sorted(files.items()))


def load_hmdb51(
    split_dir: str | Path,
    video_root: str | Path,
    split: int = 1,
    subset: str = "training",
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    probe_durations: bool = True,
    nominal_duration: float | None = None,
    probe_workers: int = 8,
    on_error: str = "raise",
) -> RecordSet:
    """Records of split ``split`` (1-3), ``subset`` training or testing, found on disk.

    A malformed line raises :class:`AnnotationError` naming file and line, or with
    ``on_error="skip"`` is logged and listed in ``RecordSet.skipped``.
    """
    check_options(on_error)
    if subset not in FLAGS:
        raise ValueError(f"subset: {subset!r} is not one of {list(FLAGS)}")
    if split not in (1, 2, 3):
        raise ValueError(f"split: {split!r} is not 1, 2 or 3")
    root = Path(video_root)
    if not root.is_dir():
        raise FileNotFoundError(f"video root {root} does not exist")
    files = hmdb51_split_files(split_dir, split)
    collector = Collector(list(files), on_error)
    for index, (name, path) in enumerate(files.items()):
        check_video_id(name, str(path))
        for number, line in numbered_lines(path):
            where = f"{path}: line {number}"
            parts = line.split()
            try:
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise AnnotationError(f"{where}: expected '<video>.avi <0|1|2>', got {line!r}")
                check_video_id(parts[0], where)
                stem = Path(parts[0]).stem
            except AnnotationError as err:
                collector.reject(where, err)
                continue
            if parts[1] != FLAGS[subset]:
                continue
            video = find_video_in([root / name, root], [stem], tuple(extensions))
            record = None if video is None else VideoRecord(stem, video, UNKNOWN, (index,), subset)
            collector.add(record, stem)
    return collector.finish(
        f"HMDB-51 split {split} {subset}",
        default_prober(probe_durations),
        nominal_duration,
        probe_workers,
    )
