"""`make readme-figures`: a run's figures into docs/, its verdicts quoted where marked."""

import re
from pathlib import Path

import pytest

from experiments.readme_figures import main

ROOT = Path(__file__).resolve().parents[2]


def test_figures_are_copied_and_verdicts_replace_the_marked_section(tmp_path):
    figures, out = tmp_path / "figures", tmp_path / "docs" / "figures"
    figures.mkdir()
    (figures / "verdicts.md").write_text("| claim | verdict |\n|---|---|\n| A above B | yes |\n")
    (figures / "curves.png").write_bytes(b"png")
    doc = tmp_path / "results.md"
    doc.write_text("intro\n<!-- begin: verdicts -->\nold\n<!-- end: verdicts -->\nafter\n")
    assert main(["--figures", str(figures), "--out", str(out), "--quote", str(doc)]) == 0
    assert (out / "curves.png").read_bytes() == b"png"
    text = doc.read_text()
    assert "old" not in text and "| A above B | yes |" in text
    assert text.startswith("intro\n") and text.endswith("after\n")


def test_another_runs_frame_figures_do_not_stay_beside_this_ones(tmp_path):
    figures, out = tmp_path / "figures", tmp_path / "docs" / "figures"
    figures.mkdir()
    out.mkdir(parents=True)
    (figures / "verdicts.md").write_text("| claim | verdict |\n|---|---|\n")
    (figures / "frames_v_new.png").write_bytes(b"new")
    for name in ("frames_v_old.png", "split_shift.md", "curves.png"):  # written by others
        (out / name).write_bytes(b"old")
    assert main(["--figures", str(figures), "--out", str(out), "--quote"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "curves.png",
        "frames_v_new.png",
        "split_shift.md",
        "verdicts.md",
    ]


def test_another_runs_verdicts_go_into_their_own_section(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "verdicts.md").write_text("| claim | verdict |\n|---|---|\n| hard | no |\n")
    doc = tmp_path / "results.md"
    doc.write_text(
        "<!-- begin: verdicts -->\nmain\n<!-- end: verdicts -->\n"
        "<!-- begin: verdicts-hard -->\nold\n<!-- end: verdicts-hard -->\n"
    )
    argv = ["--figures", str(figures), "--out", str(tmp_path / "hard"), "--quote", str(doc)]
    assert main([*argv, "--section", "verdicts-hard"]) == 0
    text = doc.read_text()
    assert "main" in text and "old" not in text and "| hard | no |" in text


def test_without_a_run_it_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="run make curves first"):
        main(["--figures", str(tmp_path), "--out", str(tmp_path / "out")])


def test_the_make_target_quotes_only_documents_with_the_section():
    quoted = re.search(r"--quote ([^\n]+)", (ROOT / "Makefile").read_text()).group(1).split()
    assert quoted
    for doc in quoted:
        assert (ROOT / doc).read_text().count("<!-- begin: verdicts -->") == 1, doc
