"""The generator's parameters (:class:`SyntheticConfig`) and its classes."""

from __future__ import annotations

from dataclasses import dataclass

#: Bump when the rendering changes: a copy written by another version is then refused by
#: :func:`~dkp.data.synthetic.writer.ensure_dataset` (``dkp-synthetic --force`` replaces it).
GENERATOR_VERSION = 5
ANNOTATION_NAME = "activity_net.v1-3.min.json"
MANIFEST_NAME = "manifest.json"
VIDEO_DIR = "videos"
FINE_GROUP = "Fine detail"
BRIEF_GROUP = "Brief event"
COARSE_GROUP = "Coarse colour"

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
ID_LENGTH = 11
MEAN_LUMA = 128.0  # the mean of every object texture, and the flat object's luma
TAPER = 6  # pixels over which the texture amplitude ramps up from the object's edge
EVENT_GAP = 1  # frames without a flash between two consecutive events of a segment

# Fine-detail textures: a 2x2 cell of deviations from the mean (x amplitude), so period 2 px.
# Every cell sums to zero, so any 2x2 average of the texture is exactly the mean.
FINE_TEXTURES: tuple[tuple[str, tuple[tuple[float, float], tuple[float, float]]], ...] = (
    ("Horizontal stripes", ((1.0, 1.0), (-1.0, -1.0))),
    ("Vertical stripes", ((1.0, -1.0), (1.0, -1.0))),
    ("Checkerboard", ((1.0, -1.0), (-1.0, 1.0))),
    ("Dot grid", ((1.5, -0.5), (-0.5, -0.5))),
    ("Hole grid", ((-1.5, 0.5), (0.5, 0.5))),
    ("Faint horizontal stripes", ((0.5, 0.5), (-0.5, -0.5))),
    ("Faint vertical stripes", ((0.5, -0.5), (0.5, -0.5))),
    ("Faint checkerboard", ((0.5, -0.5), (-0.5, 0.5))),
)

# Brief-event colours (RGB); far from the background's low-saturation colours.
BRIEF_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Red flash", (220, 30, 30)),
    ("Green flash", (30, 200, 30)),
    ("Blue flash", (30, 60, 230)),
    ("Yellow flash", (230, 220, 20)),
    ("Magenta flash", (220, 30, 220)),
    ("Cyan flash", (20, 210, 220)),
    ("Orange flash", (240, 130, 0)),
    ("Purple flash", (130, 0, 200)),
)

# Coarse-colour tints: (u, v) chroma offsets of the object from grey. Beyond the background's
# chroma range and far weaker than the flashes, and chroma is drawn at any scale (yuv420p
# keeps it at half resolution already): every network sees it in any frame of the action.
COARSE_TINTS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("Blue object", (28.0, 0.0)),
    ("Yellow object", (-28.0, 0.0)),
    ("Pink object", (0.0, 28.0)),
    ("Green object", (0.0, -28.0)),
    ("Violet object", (20.0, 20.0)),
)

MAX_FINE_CLASSES = len(FINE_TEXTURES)
MAX_BRIEF_CLASSES = len(BRIEF_COLOURS)
MAX_COARSE_CLASSES = len(COARSE_TINTS)


@dataclass(frozen=True)
class SyntheticConfig:
    """Every parameter of the generator; the manifest records them all.

    Durations are in seconds. ``videos_per_class`` counts, per subset (training, validation,
    testing), the videos whose primary label is each class. The validation split fits what
    is chosen after training (exit thresholds, stopping scores, the frame selector).
    """

    seed: int = 0
    width: int = 64
    height: int = 64
    fps: int = 10
    fine_classes: int = 4
    brief_classes: int = 4
    coarse_classes: int = 4
    videos_per_class: tuple[int, int, int] = (40, 24, 108)
    min_duration: float = 5.0
    max_duration: float = 60.0
    short_duration: float = 24.0  # shorter videos are mostly filled by the action
    short_fill: tuple[float, float] = (0.7, 0.95)  # fraction of a short video the action fills
    min_segment: float = 4.0  # action length in longer videos: U(min_segment, max_segment)
    max_segment: float = 8.0
    event_duration: float = 0.3
    event_spacing: float = 3.0  # mean seconds of action per brief event (inf: a single event)
    multi_label_fraction: float = 0.03
    object_size: int = 24
    texture_amplitude: float = 48.0  # luma deviation of the stripes (dots reach 1.5x)
    object_speed: float = 3.0  # px/s, maximum per axis
    crf: int = 12
    preset: str = "veryfast"
    gop_seconds: float = 2.0

    def __post_init__(self) -> None:
        # JSON round trips give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "videos_per_class", tuple(int(v) for v in self.videos_per_class))
        object.__setattr__(self, "short_fill", tuple(float(v) for v in self.short_fill))

    @property
    def num_classes(self) -> int:
        return self.fine_classes + self.brief_classes + self.coarse_classes

    @property
    def event_frames(self) -> int:
        return max(1, round(self.event_duration * self.fps))

    @property
    def num_videos(self) -> int:
        return self.num_classes * sum(self.videos_per_class)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first parameter that cannot work."""

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"SyntheticConfig: {message}")

        need(self.width % 2 == 0 and self.height % 2 == 0, "width and height must be even")
        need(self.width >= 16 and self.height >= 16, "width and height must be at least 16")
        need(isinstance(self.fps, int) and self.fps >= 1, "fps must be a positive integer")
        need(0 <= self.fine_classes <= MAX_FINE_CLASSES, f"fine_classes in [0, {MAX_FINE_CLASSES}]")
        need(
            0 <= self.brief_classes <= MAX_BRIEF_CLASSES,
            f"brief_classes in [0, {MAX_BRIEF_CLASSES}]",
        )
        need(
            0 <= self.coarse_classes <= MAX_COARSE_CLASSES,
            f"coarse_classes in [0, {MAX_COARSE_CLASSES}]",
        )
        need(self.num_classes >= 1, "at least one class")
        need(
            len(self.videos_per_class) == 3 and min(self.videos_per_class) >= 0,
            "videos_per_class is three counts >= 0 (training, validation, testing)",
        )
        need(self.num_videos >= 1, "at least one video")
        need(0 < self.min_duration <= self.max_duration, "0 < min_duration <= max_duration")
        need(0 < self.min_segment <= self.max_segment, "0 < min_segment <= max_segment")
        need(
            len(self.short_fill) == 2 and 0 < self.short_fill[0] <= self.short_fill[1] <= 1,
            "0 < short_fill[0] <= short_fill[1] <= 1",
        )
        need(self.event_duration > 0, "event_duration must be positive")
        # Two segments (multi-label), each holding an event, must fit the shortest video.
        need(
            round(self.min_duration * self.fps) >= 2 * self.event_frames + 2,
            "min_duration too short for two segments holding an event each",
        )
        need(
            self.event_spacing * self.fps >= self.event_frames + EVENT_GAP,
            "event_spacing must exceed event_duration by a frame (events must not merge)",
        )
        need(0 <= self.multi_label_fraction <= 1, "multi_label_fraction in [0, 1]")
        need(
            2 * TAPER < self.object_size <= min(self.width, self.height),
            f"object_size in ({2 * TAPER}, min(width, height)]",
        )
        need(0 < self.texture_amplitude <= 60, "texture_amplitude in (0, 60]")
        need(0 <= self.crf <= 51, "crf in [0, 51]")
        need(self.gop_seconds > 0, "gop_seconds must be positive")


def class_groups(config: SyntheticConfig = SyntheticConfig()) -> list[tuple[str, str]]:
    """``(class name, group name)`` in generator order: fine-detail, brief-event, coarse."""
    fine = [(name, FINE_GROUP) for name, _ in FINE_TEXTURES[: config.fine_classes]]
    brief = [(name, BRIEF_GROUP) for name, _ in BRIEF_COLOURS[: config.brief_classes]]
    coarse = [(name, COARSE_GROUP) for name, _ in COARSE_TINTS[: config.coarse_classes]]
    return fine + brief + coarse


def class_names(config: SyntheticConfig = SyntheticConfig()) -> list[str]:
    """The class names sorted by name: the order readers of the annotation file use."""
    return sorted(name for name, _ in class_groups(config))


#: The default dataset's classes, sorted by name (the readers' class order).
CLASS_NAMES: tuple[str, ...] = tuple(class_names())
