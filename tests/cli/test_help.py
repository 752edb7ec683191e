"""Every command's --help says what it does and shows examples, without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = {
    "dkp-train": "dkp.cli.train",
    "dkp-eval": "dkp.cli.evaluate",
    "dkp-exits": "dkp.cli.exits",
    "dkp-predict": "dkp.cli.predict",
    "dkp-curves": "dkp.cli.curves",
    "dkp-synthetic": "dkp.cli.synthetic",
    "dkp-activitynet": "dkp.cli.activitynet",
    "dkp-export": "dkp.cli.export",
}
PROBE = """
import sys
from {module} import main
try:
    code = main(["--help"])
except SystemExit as exit_:  # argparse ends --help this way
    code = exit_.code
print("torch imported:", "torch" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_says_what_and_shows_examples_without_torch(command, tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=COMMANDS[command])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    text = run.stdout
    assert command in text and text.lower().count(f"  {command} ") >= 2, text  # examples
    assert "torch imported: False" in text


def test_the_console_scripts_are_these_modules():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert {name: scripts.get(name) for name in COMMANDS} == {
        name: f"{module}:main" for name, module in COMMANDS.items()
    }
