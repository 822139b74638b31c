"""The service's code type-checks: mypy over streams, agents and tables, as pyproject.toml configures it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_service_type_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues found" in result.stdout, result.stdout
