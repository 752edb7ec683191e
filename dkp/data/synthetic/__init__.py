"""The embedded dataset: a small synthetic ActivityNet-v1.3 set, written as real H.264 videos.

``make curves`` trains and evaluates on it, on 2 CPU cores, in minutes; no download is needed.
``dkp-synthetic --out DIR`` writes, in about two minutes on
2 cores (78 MB for the default 2,064 videos, 12.7 hours of video):

* ``DIR/videos/v_<id>.mp4``: H.264 (libx264, yuv420p, low CRF) videos, 64x64 pixels at 10 fps
  by default; ids are 11-character YouTube-like strings drawn from the seed.
* ``DIR/activity_net.v1-3.min.json``: the annotations, in exactly the official layout
  (``version``, ``taxonomy``, ``database`` with ``subset``, ``duration``, ``resolution``, ``url``
  and ``annotations`` of ``segment`` + ``label``). The taxonomy is ``Root`` -> three groups
  (``Fine detail``, ``Brief event``, ``Coarse colour``) -> the classes. All subsets,
  ``testing`` included, keep their labels (the real ActivityNet test set has none).
* ``DIR/manifest.json``: the generator's parameters and version, written last; a directory
  without it is an interrupted run.

The same seed gives byte-identical videos and annotations (with the same numpy and FFmpeg/x264
builds): every video draws from its own RNG seeded by ``(seed, video index)``, and each encoder
runs single-threaded with x264's assembly off (its AVX-512 kernels vary run to run), so neither
worker scheduling nor the CPU matters.

Why it needs both networks
--------------------------
The method pairs a light student that sees many frames at low resolution (32x32 here) with a
heavy teacher that sees few frames at full resolution (64x64). The classes are built so that
each ability alone fails on a third of them, and a third are easy for both (as in real data,
where many classes show at a glance):

* **Fine detail** classes (default 4): during the action segment (and only then) a 24x24
  object, moving slowly by whole pixels, carries a class texture in luma whose period is
  2 pixels (horizontal stripes, vertical stripes, checkerboard, a 1-in-4 dot grid, ...). Every
  texture has the same mean, and its amplitude tapers smoothly to zero over the object's outer
  6 pixels. A 2x downscale (swscale's bilinear filter, or 2x2 averaging) cancels any period-2
  pattern, and the taper keeps the object's edges from leaking it, so at 32x32 every fine
  class is the same flat grey patch while at 64x64 the textures are trivially told apart.
  Luma only (yuv420p halves chroma) and CRF 12 keep the textures intact through H.264.
* **Brief event** classes (default 4): the same object appears during the segment, but flat
  (the textures' mean), so the teacher's frames show nothing class-specific. The class is
  given only by brief events (0.3 s, 3 frames): a large disc of a class colour (red, green,
  blue, yellow, ...), visible even at 16x16, that flashes again and again through the
  segment, about once per 3 s of it (``event_spacing``), each time at a random moment of
  its own slot and never merging with the next. A longer action holds more flashes, as a
  fine texture is on screen for longer; most of the action shows none, so the evenly
  spaced frames of a whole video hit a flash in 7 % of the default brief-event videos with
  1 frame, 21 % with 4, 37 % with 8, 64 % with 16 and 80 % with 32 (``plan.event_hit_share``
  on the default dataset's plans): the teacher's few frames miss most flashes, the student's
  many catch them.
* **Coarse colour** classes (default 4): the flat object is tinted (blue, yellow, pink,
  green), beyond the background's chroma range and far weaker than the flashes. Colour
  survives any downscale, so both networks see it in any frame of the action: here the
  student's many frames find a short action in a long video more often than the teacher's few.
* **Untrimmed** like ActivityNet: durations are log-uniform in [5, 60] s, stratified (each
  class's videos in a subset fall one in each equal share of that range, so no split is
  harder than another by the chance of its durations). Videos shorter than
  24 s are mostly (70-95 %) filled by the action; longer ones contain it in one segment of
  U(4, 8) s at a random place, the rest is background. So short videos are easy and long ones
  hide short actions, which is where sampling one frame every r seconds beats sampling a fixed
  number of frames per video.
* **Background everywhere**: a slowly panning low-frequency wave, drifting soft blobs, a slow
  global brightness change and mild (low-saturation) colour, all smooth and noise free, drawn
  independently of the class, so the codec does real work and frames differ without giving
  any class information away.
* **Multi-label**: a fraction (default 3 %) of the videos has two segments of two different
  classes, in two halves of the video (ActivityNet has a few 2-label videos).
* **Balanced**: every class is the primary label of the same number of videos per subset
  (default 40 training, 24 validation, 108 testing: 2,064 videos; 1,296 test videos, so that
  one draw of test videos moves a curve point with a standard deviation of about 0.65 mAP,
  and 288 validation videos to fit the exit thresholds, stopping scores and frame selector
  on).

Frame ``i`` covers ``[i / fps, (i + 1) / fps)``; segments start and end on frame boundaries.
The JSON durations are the written files' durations as PyAV measures them.
"""

from dkp.data.synthetic.config import ANNOTATION_NAME, CLASS_NAMES, SyntheticConfig, class_names
from dkp.data.synthetic.writer import dataset_matches, ensure_dataset, generate, video_path

__all__ = [
    "ANNOTATION_NAME",
    "CLASS_NAMES",
    "SyntheticConfig",
    "class_names",
    "dataset_matches",
    "ensure_dataset",
    "generate",
    "video_path",
]
