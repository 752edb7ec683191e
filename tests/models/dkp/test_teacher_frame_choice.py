"""experiments/teacher_frame_choice.py: which teacher frame each rule picks, and the table."""

import numpy as np

from experiments.teacher_frame_choice import choices, table


def scores() -> dict[str, np.ndarray]:
    """4 videos, 4 candidate frames, 3 classes: the true class shows only at one candidate
    (2 for video 0, 3, 0, 1); the student is most confident at the last real candidate, the
    selector at the first; video 3 has 2 real candidates."""
    target = np.eye(3)[[0, 1, 2, 0]]
    real = np.ones((4, 4), bool)
    real[3, 2:] = False
    single = np.full((4, 4, 3), 0.1)
    for video, (where, label) in enumerate([(2, 0), (3, 1), (0, 2), (1, 0)]):
        single[video, :, (label + 1) % 3] = 0.8  # a wrong class everywhere else
        single[video, where] = 0.1
        single[video, where, label] = 0.8
    confidence = np.tile([0.2, 0.3, 0.4, 0.9], (4, 1))
    selector = np.tile([0.9, 0.1, 0.1, 0.1], (4, 1))
    return {
        "single": single, "joint": single.mean(1), "confidence": confidence, "selector": selector,
        "real": real, "target": target,
        "cost_one": np.full(4, 0.5), "cost_selector": np.full(4, 0.6), "cost_all": np.full(4, 2.0),
    }  # fmt: skip


def test_each_rule_picks_its_frame_among_the_real_ones():
    picked = choices(scores())
    assert picked["middle"].tolist() == [1, 1, 1, 0]  # coarse to fine: the middle one first
    assert picked["confident"].tolist() == [3, 3, 3, 1]  # never a padded candidate
    assert picked["selector"].tolist() == [0, 0, 0, 0]
    assert picked["oracle"].tolist() == [2, 3, 0, 1]


def test_table_rows_their_costs_and_the_paired_difference():
    header, rows = table(scores(), replicates=50)
    assert header[-1] == "mAP - middle"
    names = [r[0] for r in rows]
    assert names == [
        "middle candidate",
        "student's most confident frame",
        "frame selector's choice",
        "best for the true class (oracle)",
        "all 4 candidates fused at once",
    ]
    costs = [r[1:3] for r in rows]
    assert costs == [["1", "0.5000"]] * 2 + [["1", "0.6000"], ["1", "0.5000"], ["4", "2.0000"]]
    oracle = rows[3]
    assert oracle[3].startswith("100.0 [100.0, 100.0]") and oracle[4].startswith("100.0")
    middle_map = float(rows[0][3].split()[0])
    assert middle_map < 100 and rows[0][5] == ""
    assert float(oracle[5].split()[0]) == round(100 - middle_map, 1)
