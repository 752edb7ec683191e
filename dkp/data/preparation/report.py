"""The check report: what each video file is, what is wrong with it, and the videos to leave out.

A check measures each file once (:class:`FileFacts`, kept per path, size and mtime, so a rerun
measures only what changed) and judges it against what its annotation says
(:func:`judge`): the judgement is redone on every run, so a corrected annotation needs no new
decoding. Problems of ``error`` severity make a video unusable (missing, empty, unreadable,
no video stream, frames that end before the annotation says): ``data.exclude_report`` leaves
those out of training and evaluation, each named in the log. ``warning``s are kept: the
video reads, but is worth a look (a header that lies, an unusual codec or pixel format,
keyframes far apart).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dkp.data.annotations.records import RecordSet
from dkp.runtime.atomic import write_json

log = logging.getLogger(__name__)

FORMAT = "dkp-data check report"
VERSION = 1
ERROR, WARNING = "error", "warning"
#: Problem kind -> severity.
KINDS = {
    "missing": ERROR,  # the annotations list it; no file is there
    "zero_length": ERROR,
    "unreadable": ERROR,  # cannot be opened or indexed
    "no_video_stream": ERROR,
    "truncated": ERROR,  # cannot be decoded past some time, or ends before its annotation
    "header_duration": WARNING,  # the header's duration disagrees with the frames'
    "annotation_duration": WARNING,  # the frames run well past the annotated duration
    "codec": WARNING,
    "pixel_format": WARNING,
    "sparse_keyframes": WARNING,
}
#: What the reader reads fast and exactly, and datasets commonly hold.
USUAL_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})
USUAL_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p"})
#: Keyframes further apart than this make every sampled frame cost seconds of decoding.
SPARSE_KEYFRAMES_S = 10.0


@dataclass
class FileFacts:
    """What one version of a video file is; ``error`` is why it could not be read, ``""`` if
    it could. ``decodes_to`` is the last probed time that decoded (None: all did)."""

    size: int
    mtime_ns: int
    error: str = ""
    error_kind: str = ""
    codec: str = ""
    pixel_format: str = ""
    width: int = 0
    height: int = 0
    fps: float | None = None
    frames: int = 0
    duration: float = 0.0  # the frames' span
    header_duration: float | None = None
    keyframes: int = 0
    keyframe_gap: float = 0.0  # the longest, seconds
    audio: bool = False
    decodes_to: float | None = None
    decode_error: str = ""
    seconds: float = 0.0  # what checking it took (wall clock)
    cpu_seconds: float = 0.0  # the checking process's CPU time (free of other load)


@dataclass
class Problem:
    kind: str
    message: str

    @property
    def severity(self) -> str:
        return KINDS[self.kind]


@dataclass
class VideoEntry:
    """A listed video file: its ids in the annotations, its facts and problems."""

    path: str
    ids: list[str]
    facts: FileFacts
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        severities = {p.severity for p in self.problems}
        return ERROR if ERROR in severities else WARNING if severities else "ok"


def judge(facts: FileFacts, annotated: float | None) -> list[Problem]:
    """The problems of a file with ``facts`` whose annotation says it lasts ``annotated`` s."""
    if facts.error:
        return [Problem(facts.error_kind or "unreadable", facts.error)]
    problems = []
    if facts.decodes_to is not None:
        problems.append(
            Problem(
                "truncated",
                f"cannot be decoded past {facts.decodes_to:.1f} s of {facts.duration:.1f} s "
                f"({facts.decode_error})",
            )
        )
    if annotated is not None:
        short = annotated - facts.duration
        if short > max(1.0, 0.05 * annotated):
            problems.append(
                Problem(
                    "truncated",
                    f"its frames end at {facts.duration:.1f} s; the annotation says it lasts "
                    f"{annotated:.1f} s",
                )
            )
        elif -short > max(2.0, 0.1 * annotated):
            problems.append(
                Problem(
                    "annotation_duration",
                    f"its frames span {facts.duration:.1f} s; the annotation says "
                    f"{annotated:.1f} s",
                )
            )
    header = facts.header_duration
    if header is not None and abs(header - facts.duration) > max(0.25, 0.02 * facts.duration):
        problems.append(
            Problem(
                "header_duration",
                f"the header says {header:.1f} s, the frames span {facts.duration:.1f} s",
            )
        )
    if facts.codec not in USUAL_CODECS:
        problems.append(Problem("codec", f"codec {facts.codec}"))
    if facts.pixel_format not in USUAL_PIXEL_FORMATS:
        problems.append(Problem("pixel_format", f"pixel format {facts.pixel_format}"))
    if facts.keyframe_gap > SPARSE_KEYFRAMES_S:
        problems.append(
            Problem(
                "sparse_keyframes",
                f"keyframes up to {facts.keyframe_gap:.1f} s apart (slow to sample: prepare a "
                "copy)",
            )
        )
    return problems


@dataclass
class CheckReport:
    """Every listed video (``entries``, by path) and every listed id with no file
    (``missing``: id -> the split that lists it)."""

    entries: dict[str, VideoEntry] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def save(self, path: str | os.PathLike) -> None:
        entries = [
            {
                "path": e.path,
                "ids": e.ids,
                "status": e.status,
                "problems": [{**asdict(p), "severity": p.severity} for p in e.problems],
                "facts": asdict(e.facts),
            }
            for e in self.entries.values()
        ]
        write_json(
            path,
            {
                "format": FORMAT,
                "version": VERSION,
                "settings": self.settings,
                "seconds": round(self.seconds, 3),
                "summary": self.counts(),
                "missing": [{"id": i, "split": s} for i, s in self.missing.items()],
                "videos": entries,
            },
            indent=1,
        ).chmod(0o644)  # a report others read (a temporary file is the owner's only)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CheckReport:
        """The report at ``path``; ValueError naming the file if it is not one."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file (dkp-data check writes one)")
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise ValueError(f"not a {FORMAT} (version {VERSION})")
            report = cls(settings=data["settings"], seconds=data["seconds"])
            report.missing = {m["id"]: m["split"] for m in data["missing"]}
            for v in data["videos"]:
                problems = [Problem(p["kind"], p["message"]) for p in v["problems"]]
                entry = VideoEntry(v["path"], v["ids"], FileFacts(**v["facts"]), problems)
                report.entries[entry.path] = entry
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not a usable check report ({err})") from None
        return report

    def counts(self) -> dict[str, int]:
        statuses = Counter(e.status for e in self.entries.values())
        return {
            "videos": len(self.entries) + len(self.missing),
            "ok": statuses["ok"],
            "warning": statuses[WARNING],
            "error": statuses[ERROR] + len(self.missing),
            "missing": len(self.missing),
        }

    def bad(self) -> dict[str, str]:
        """Path -> reasons, of every video with an error."""
        return {
            path: "; ".join(p.message for p in e.problems if p.severity == ERROR)
            for path, e in self.entries.items()
            if e.status == ERROR
        }

    def summary(self, shown: int = 50) -> str:
        """A table of problems by kind, then every video with a problem (up to ``shown`` per
        severity; the JSON report has all of them)."""
        c = self.counts()
        lines = [
            f"{c['videos']} videos listed: {c['ok']} ok, {c['warning']} with warnings, "
            f"{c['error']} with errors ({c['missing']} missing)",
            "",
            "| problem | severity | videos | example |",
            "|---|---|---|---|",
        ]
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for video_id in self.missing:
            by_kind.setdefault("missing", []).append((video_id, "no file"))
        for e in self.entries.values():
            for p in e.problems:
                by_kind.setdefault(p.kind, []).append((e.path, p.message))
        for kind in KINDS:
            if kind in by_kind:
                name, message = by_kind[kind][0]
                count = len(by_kind[kind])
                lines.append(f"| {kind} | {KINDS[kind]} | {count} | {name}: {message} |")
        if not by_kind:
            lines.append("| (none) | | 0 | |")
        for severity in (ERROR, WARNING):
            named = [
                (name, kind, message)
                for kind, found in by_kind.items()
                if KINDS[kind] == severity
                for name, message in found
            ]
            if named:
                lines += ["", f"{severity}s:"]
                lines += [f"  {name}: {kind}: {message}" for name, kind, message in named[:shown]]
                if len(named) > shown:
                    lines.append(f"  ... {len(named) - shown} more in the JSON report")
        return "\n".join(lines)


def leave_out_bad(records: RecordSet, report: CheckReport, split: str) -> RecordSet:
    """``records`` without the videos ``report`` finds an error in, each named in the log."""
    bad = {os.path.abspath(p): why for p, why in report.bad().items()}
    kept = []
    for record in records.records:
        why = bad.get(os.path.abspath(record.path))
        if why is None:
            kept.append(record)
        else:
            log.warning(
                "%s split: leaving out %s (%s): %s", split, record.video_id, record.path, why
            )
    if len(kept) < len(records.records):
        log.info(
            "%s split: %d videos left out as the check report says",
            split,
            len(records.records) - len(kept),
        )
    return RecordSet(records.classes, kept, records.missing, records.skipped)
