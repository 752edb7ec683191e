"""UCF-101 official split lists (``ucfTrainTestlist/``) to records.

``classInd.txt`` numbers the classes from 1 (``1 ApplyEyeMakeup``); the class list is in that
order. ``trainlist0N.txt`` lines are ``<Class>/<video>.avi <class number>``; ``testlist0N.txt``
lines have no number, the class is the folder name. Videos are found as
``<root>/<Class>/<video>.<ext>`` (the official layout) or ``<root>/<video>.<ext>``, any usual
extension (copies are often transcoded). The lists give no durations: they are probed from
the files unless ``probe_durations`` is off and a ``nominal_duration`` is given.
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

LISTS = {"training": "trainlist{:02d}.txt", "testing": "testlist{:02d}.txt"}


def ucf101_classes(class_file: str | Path) -> list[str]:
    """Class names in ``classInd.txt`` order; the numbers must run 1, 2, 3, ..."""
    path = Path(class_file)
    classes: list[str] = []
    for number, line in numbered_lines(path):
        parts = line.split()
        if len(parts) != 2 or parts[0] != str(len(classes) + 1):
            raise AnnotationError(
                f"{path}: line {number}: expected '{len(classes) + 1} <ClassName>', got {line!r}"
            )
        check_video_id(parts[1], f"{path}: line {number}")
        classes.append(parts[1])
    if not classes:
        raise AnnotationError(f"{path}: no classes")
    return classes


def _entry(line: str, where: str, classes: list[str], labelled: bool) -> tuple[str, str, int]:
    """(class folder, video stem, class index) of one list line."""
    parts = line.split()
    if len(parts) != (2 if labelled else 1):
        shape = "<Class>/<video> <number>" if labelled else "<Class>/<video>"
        raise AnnotationError(f"{where}: expected '{shape}', got {line!r}")
    folder, _, name = parts[0].replace("\\", "/").rpartition("/")
    stem = Path(name).stem
    check_video_id(stem, where)
    if folder not in classes:
        raise AnnotationError(f"{where}: folder {folder!r} is not a class of classInd.txt")
    index = classes.index(folder)
    if labelled and parts[1] != str(index + 1):
        raise AnnotationError(
            f"{where}: class number {parts[1]} does not match folder {folder!r} ({index + 1})"
        )
    return folder, stem, index


def load_ucf101(
    annotation_dir: str | Path,
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

    A malformed line (or one whose number and folder disagree) raises
    :class:`AnnotationError` naming file and line, or with ``on_error="skip"`` is logged
    and listed in ``RecordSet.skipped``.
    """
    check_options(on_error)
    if subset not in LISTS:
        raise ValueError(f"subset: {subset!r} is not one of {list(LISTS)}")
    if split not in (1, 2, 3):
        raise ValueError(f"split: {split!r} is not 1, 2 or 3")
    folder = Path(annotation_dir)
    root = Path(video_root)
    if not root.is_dir():
        raise FileNotFoundError(f"video root {root} does not exist")
    classes = ucf101_classes(folder / "classInd.txt")
    collector = Collector(classes, on_error)
    path = folder / LISTS[subset].format(split)
    for number, line in numbered_lines(path):
        where = f"{path}: line {number}"
        try:
            class_folder, stem, index = _entry(line, where, classes, subset == "training")
        except AnnotationError as err:
            collector.reject(where, err)
            continue
        video = find_video_in([root / class_folder, root], [stem], tuple(extensions))
        record = None
        if video is not None:
            record = VideoRecord(stem, video, UNKNOWN, (index,), subset)
        collector.add(record, stem)
    return collector.finish(
        path.name, default_prober(probe_durations), nominal_duration, probe_workers
    )
