"""Every curve point broken down: mAP per class group, top-1 on the shorter and longer videos.

python experiments/class_groups.py --data DIR --out F.md RUN_DIR [RUN_DIR ...]

For the points under the run directories (each ``results.json`` with its ``scores.npz``) of an
ActivityNet-format dataset (``DIR/activity_net.v1-3.min.json`` + ``DIR/videos``), one row per
point and class group (the taxonomy's top-level nodes): the group's mAP, and the top-1 accuracy
of its videos shorter than the test split's median duration and of the others, each with its
95 % bootstrap interval over the test videos (the replicates of the curve points). It shows
what a sampling strategy trades: which kind of class and which videos gain or lose.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dkp.data.annotations.activitynet import load_activitynet, taxonomy_groups
from dkp.data.synthetic.config import ANNOTATION_NAME
from dkp.evaluation.bootstrap import weights_with_full_set
from dkp.evaluation.breakdown import group_scores
from dkp.evaluation.video_scores import SCORES_FILE, read_scores
from dkp.reporting.points import collect_points
from dkp.reporting.tables import emit_table, interval_cell, shown_path


def class_groups(annotation_file: Path, classes: list[str]) -> dict[str, list[int]]:
    """The columns of each top-level group's classes, groups in the taxonomy's order."""
    taxonomy = json.loads(annotation_file.read_text(encoding="utf-8")).get("taxonomy", [])
    leaves = taxonomy_groups(taxonomy, f"{annotation_file}: taxonomy")
    groups: dict[str, list[int]] = {}
    for node in taxonomy:
        columns = [i for i, name in enumerate(classes) if leaves.get(name) == node["nodeName"]]
        if columns:
            groups[node["nodeName"]] = columns
    return groups


def table(
    data: Path,
    dirs: list[Path],
    subset: str = "testing",
    replicates: int = 1000,
    base: Path = Path("."),
) -> tuple[list[str], list[list[str]]]:
    """The header and one row per (point, class group), the point's ``results.json`` shown
    relative to ``base``; see the module's docstring."""
    annotations = data / ANNOTATION_NAME
    records = load_activitynet(annotations, data / "videos", subsets=[subset])
    groups = class_groups(annotations, records.classes)
    durations = {r.video_id: r.duration for r in records.records}
    edge = float(np.median(list(durations.values())))
    points, _ = collect_points(dirs, replicates=0)
    rows = []
    for point in sorted(points, key=lambda p: (p.series, p.gflops, p.source)):
        path = Path(point.source).with_name(SCORES_FILE)
        if not path.is_file():
            print(f"skipped {point.source}: no {SCORES_FILE} beside it", file=sys.stderr)
            continue
        scores = read_scores(path)
        unknown = sorted(set(scores.video_ids.tolist()) - durations.keys())
        if unknown:
            raise ValueError(f"{path}: video {unknown[0]!r} is not in {annotations} ({subset})")
        videos = len(scores.probs)
        weights = weights_with_full_set(videos, replicates)
        length = np.array([durations[v] for v in scores.video_ids.tolist()])
        for g in group_scores(scores.probs, scores.target, length, groups, weights, edge):
            cells = [interval_cell(100 * v) for v in (g.map, g.top1_shorter, g.top1_longer)]
            source = f"`{shown_path(point.source, base)}`"
            head = [point.series, f"{point.gflops:.3f}", g.group, str(g.videos)]
            rows.append([*head, *cells, source])
    lengths = [f"top-1, videos < {edge:.1f} s (%)", f"top-1, videos >= {edge:.1f} s (%)"]
    header = ["series", "GFLOPs", "class group", "videos", "mAP (%)", *lengths, "source"]
    return header, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", type=Path, nargs="+", help="run directories (results.json)")
    parser.add_argument("--data", type=Path, required=True, help="an ActivityNet-format dataset")
    parser.add_argument("--subset", default="testing", help="the split the points scored")
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates")
    parser.add_argument("--out", type=Path, help="write the table here (.md, and .csv beside it)")
    args = parser.parse_args(argv)
    base = args.out.parent if args.out else Path(".")
    header, rows = table(args.data, args.dirs, args.subset, args.replicates, base)
    emit_table(header, rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
