"""The code is lint-clean and formatted: ruff's checks and formatter, as configured in pyproject.toml."""

import subprocess
import sys

import pytest

from tests.fixtures import ROOT


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff(command):
    done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
