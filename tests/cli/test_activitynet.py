"""dkp-activitynet score: prints the official numbers; a user error exits 2 naming it."""

from dkp.cli.activitynet import main
from tests.evaluation.test_activitynet_submission import (
    write_example_submission,
    write_ground_truth,
)


def test_cli_prints_interpolated_map_and_hit_at_3(tmp_path, capsys):
    submission, ground_truth = write_example_submission(tmp_path), write_ground_truth(tmp_path)
    assert main(["score", str(submission), str(ground_truth)]) == 0
    out = capsys.readouterr().out
    assert "interpolated mAP (official): 56.67" in out
    assert "hit@3 (official): 75.00" in out
    assert "non-interpolated mAP (ours, over submitted scores): 66.67" in out
    assert main(["score", str(submission), str(ground_truth), "--subset", "training"]) == 0
    assert "hit@3 (official): 0.00" in capsys.readouterr().out  # eee: no predictions
    assert main(["score", str(submission), str(ground_truth), "--subset", "testing"]) == 2
    assert "no videos in subset 'testing'" in capsys.readouterr().err
