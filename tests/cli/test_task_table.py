"""`fieldtui tasks` prints each task id whole: it is what `task cancel|delete` take."""

from __future__ import annotations

from datetime import UTC, datetime

from fieldtui.commands._output import tasks_lines, width
from fieldtui.core.models import Task, TaskState


def test_a_long_task_id_and_a_type_that_fills_its_column_are_whole_and_apart() -> None:
    task = Task(
        backend="gateways",
        device="992748309",
        id="6b0de2a7912265b1f50d8f17",
        type="SOFTWARE_UPGRADE",
        state=TaskState("queued"),
        raw_state="queued",
        created=datetime(2026, 11, 30, 20, 55, tzinfo=UTC),
        detail="a long detail that does not fit on the line and is cut at the edge of the screen",
    )
    header, row, detail, *_ = tasks_lines([task], [])
    words = row.split()
    assert words[:4] == ["gateways", "6b0de2a7912265b1f50d8f17", "SOFTWARE_UPGRADE", "queued"]
    assert header.split()[:5] == ["BACKEND", "ID", "TYPE", "STATE", "UPDATED"]
    assert width(row) <= 80
    assert detail.startswith("  a long detail") and detail.endswith("...") and width(detail) == 80
