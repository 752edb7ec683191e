"""What holds for the repository as a whole: portable files, a true layout, thin entry points."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Absolute paths of the machines that make files: home folders, temporary and work dirs.
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:home|root|Users|tmp|work|scratch|mnt|private)/\w")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for name in filter(None, names):
        path = REPO / name.decode()
        data = path.read_bytes() if path.is_file() else b"\0"
        if b"\0" not in data[:8192]:
            files.append(path)
    return files


def test_committed_files_hold_no_absolute_machine_paths():
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if str(REPO) in line or MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def layout_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## Layout", 1)[1].split("\n## ", 1)[0]


def test_the_readme_layout_names_every_package_and_only_real_paths():
    layout = layout_section()
    packages = sorted(
        p.parent.relative_to(REPO).as_posix() + "/"
        for p in (REPO / "dkp").rglob("__init__.py")
        if p.parent != REPO / "dkp"
    )
    missing = [p for p in packages if p not in layout]
    assert not missing, f"the README's Layout does not name {missing}"
    for path in re.findall(r"`([\w./-]+)`", layout) + re.findall(r"^(\S+/)", layout, re.M):
        assert (REPO / path).exists(), f"the README's Layout names {path}, which does not exist"


def imports(path: Path) -> list[str]:
    """The modules ``path`` imports from (``from X import ...``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]


def test_entry_points_import_no_other_entry_point():
    for path in (REPO / "dkp" / "cli").glob("*.py"):
        assert not [m for m in imports(path) if m.startswith("dkp.cli")], path.name


def test_the_runtime_layer_imports_no_other_layer():
    for path in (REPO / "dkp" / "runtime").glob("*.py"):
        imported = imports(path)
        others = [m for m in imported if m.startswith("dkp.") and not m.startswith("dkp.runtime")]
        assert not others, f"{path.name} imports {others}"
