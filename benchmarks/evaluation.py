"""Bootstrap intervals at paper scale: dkp's AP kernel against scikit-learn's, per replicate.

Every curve point's 95 % interval scores each class under 1,000 bootstrap replicates of the
test videos. The alternative a user would reach for is scikit-learn's
``average_precision_score`` with ``sample_weight``, once per replicate and class. Both run on
the same scores and weights (their APs are checked to agree); the figure is a ratio of time
per (class, replicate), the two methods interleaved, and the seconds one curve point costs.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from benchmarks import report
from benchmarks.timing import best, interleaved
from dkp.evaluation.average_precision import average_precision
from dkp.evaluation.bootstrap import replicate_weights

REPLICATES = 1000
SKLEARN_REPLICATES = 25  # scikit-learn's per-call cost is steady; a sample of rows times it
#: (name, test videos, classes): the embedded benchmark and ActivityNet v1.3's validation set.
SCALES = (("embedded", 1296, 12), ("ActivityNet v1.3 val", 4926, 200))


def scale_case(name: str, videos: int, classes: int, reps: int) -> dict:
    """Time per (class, replicate) of both kernels on one class of ``videos // classes``
    positives whose scores are informative but overlap the negatives'."""
    rng = np.random.default_rng(0)
    positive = rng.permutation(videos) < max(1, videos // classes)
    scores = np.round(rng.random(videos) + 0.6 * positive, 3)  # ties, as softmax scores have
    weights = replicate_weights(videos, REPLICATES)
    sample = weights[:SKLEARN_REPLICATES]
    ours = average_precision(scores, positive, weights)
    theirs = [average_precision_score(positive, scores, sample_weight=row) for row in sample]
    np.testing.assert_allclose(ours[:SKLEARN_REPLICATES], theirs, rtol=0, atol=1e-12)
    times = interleaved(
        {
            "dkp": lambda: average_precision(scores, positive, weights),
            "sklearn": lambda: [
                average_precision_score(positive, scores, sample_weight=row) for row in sample
            ],
        },
        max(3, reps),
        warmup=True,
    )
    per_dkp = best(times["dkp"]) / REPLICATES
    per_sklearn = best(times["sklearn"]) / SKLEARN_REPLICATES
    return {
        "scale": name,
        "videos": videos,
        "classes": classes,
        "us_dkp": 1e6 * per_dkp,
        "us_sklearn": 1e6 * per_sklearn,
        "x_sklearn": per_sklearn / per_dkp,
        "point_s_dkp": per_dkp * REPLICATES * classes,
        "point_s_sklearn": per_sklearn * REPLICATES * classes,
    }


#: The table's columns: (header, key of a row).
COLUMNS = (
    ("test set", "scale"),
    ("videos", "videos"),
    ("classes", "classes"),
    ("us dkp", "us_dkp"),
    ("us sklearn", "us_sklearn"),
    ("x sklearn", "x_sklearn"),
    ("s per point dkp", "point_s_dkp"),
    ("s per point sklearn", "point_s_sklearn"),
)


def section(args, out: dict) -> list[str]:
    """The ``make bench`` section: one row per scale."""
    rows = [scale_case(*scale, args.reps) for scale in SCALES]
    out["evaluation"] = rows
    title = (
        f"A curve point's bootstrap interval ({REPLICATES} replicates): AP per class and "
        "replicate, dkp's kernel against scikit-learn's, side by side"
    )
    header = [name for name, _ in COLUMNS]
    return [report.table(title, header, [[r[key] for _, key in COLUMNS] for r in rows])]
