"""The supplement's figure of videos stopping at the first, a middle and the last checkpoint."""

import numpy as np

from dkp.reporting.exit_examples import ExitExample, pick_examples, plot_exit_examples


def test_pick_examples_and_figure(tmp_path):
    exits = np.array([0, 0, 1, 2, 2, 0, 3, 3])
    correct = np.array([False, True, True, True, False, True, False, True])
    picked = pick_examples(exits, correct, checkpoints=4)
    assert picked == [(0, [1, 5]), (1, [2]), (3, [7, 6])]
    frames = np.zeros((8, 16, 16, 3), dtype=np.uint8)
    rows = [
        (k, [ExitExample(str(i), frames, k + 1, "a", "a" if correct[i] else "b") for i in idx])
        for k, idx in picked
    ]
    out = plot_exit_examples(rows, tmp_path / "examples.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
