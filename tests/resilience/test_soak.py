"""The chaos soak (bench/soak.py) in short mode: the whole promise under faults, kills and restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).parents[2] / "bench" / "soak.py"


@pytest.mark.slow
def test_short_chaos_soak_applies_every_action_once_in_order_and_loses_nothing() -> None:
    result = subprocess.run([sys.executable, str(SOAK)], capture_output=True, text=True, timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "duplicates  0" in report and "lost        0" in report, report
    assert "violations  0" in report, report
    kills = next(line for line in report.splitlines() if line.strip().startswith("kills"))
    assert int(kills.split()[1]) >= 5, report  # the sync process really was killed, repeatedly
