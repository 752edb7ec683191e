"""dkp-curves: figures and tables from a sweep; failed jobs listed; 1 with nothing to plot."""

from pathlib import Path

from dkp.cli.curves import main
from tests.reporting.test_curves import make_sweep


def test_draws_reports_and_exits_1_with_nothing_to_plot(tmp_path: Path, capsys):
    sweep = make_sweep(tmp_path)
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out), "--name", "fig", "--title", "T"]) == 0
    assert "T: test split, 96 videos" in (out / "fig.svg").read_text()  # every point had 96
    assert {p.name for p in out.iterdir()} == {"fig.png", "fig.svg", "fig.csv", "fig.md"}
    assert len((out / "fig.csv").read_text().splitlines()) == 4
    printed = capsys.readouterr().out
    assert "1 failed job(s):" in printed and "failed.json" in printed
    assert "3 point(s) in 2 series: DKP A, Teacher" in printed
    assert "skipped result(s)" in printed
    assert main([str(sweep)]) == 0
    assert (sweep / "curves.png").stat().st_size > 0 and (sweep / "curves.md").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty)]) == 1
    assert not any(empty.iterdir())
