"""A generated section replaces only what lies between its markers."""

import pytest

from dkp.reporting.markdown import replace_section


def test_replaces_only_the_marked_section(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- begin: t -->\nold\n<!-- end: t -->\noutro\n")
    replace_section(doc, "t", "| a |\n|---|\n")
    replace_section(doc, "t", "| b |\n|---|\n")  # twice: the markers survive
    assert doc.read_text() == "intro\n<!-- begin: t -->\n| b |\n|---|\n<!-- end: t -->\noutro\n"


@pytest.mark.parametrize("text", ["no markers\n", "<!-- begin: t -->\n<!-- end: t -->\n" * 2])
def test_missing_or_repeated_markers_name_the_file(tmp_path, text):
    doc = tmp_path / "doc.md"
    doc.write_text(text)
    with pytest.raises(ValueError, match=r"doc\.md: needs exactly one '<!-- begin: t -->'"):
        replace_section(doc, "t", "x")
    assert doc.read_text() == text
