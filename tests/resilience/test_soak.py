"""The chaos soak (bench/soak.py) in short mode: the whole promise under faults, kills of the sync
and of the app, a sync paused past its lease, lost and late answers and unreadable outbox rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).parents[2] / "bench" / "soak.py"


def _figure(report: str, label: str) -> int:
    match = re.search(rf"^  {label} +(\d+)", report, flags=re.M)
    assert match is not None, f"no {label!r} line in the report:\n{report}"
    return int(match.group(1))


@pytest.mark.slow
def test_short_chaos_soak_applies_every_action_once_in_order_and_loses_nothing() -> None:
    result = subprocess.run([sys.executable, str(SOAK)], capture_output=True, text=True, timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert _figure(report, "duplicates") == 0 and _figure(report, "lost") == 0, report
    assert _figure(report, "violations") == 0, report
    assert _figure(report, "kills") >= 5, report  # the sync process really was killed, repeatedly
    assert _figure(report, "app kills") >= 1, report  # and the app, whose background sync shares the outbox
    assert _figure(report, "pauses") >= 1, report  # a sync stopped past its lease while the app synced
    assert _figure(report, "damaged") >= 1, report  # unreadable rows appeared in the outbox file
    assert re.search(r"\d+ answer_lost", report) and re.search(r"\d+ lands_late", report), report
