"""Waiting and reading helpers for the UI tests (imported by the test modules)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], *, timeout: float = 15.0, what: str = "condition"
) -> None:
    """Let the app run until ``condition()`` holds (service work happens in workers)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.05)


async def wait_until(
    pilot: Pilot[Any], check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.1)


def notifications(app: Any) -> list[str]:
    return list(app.notified)


async def service_ready(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: getattr(app, "service", None) is not None, what="the service")
    await pilot.pause()


async def press_from_lookup(pilot: Pilot[Any], *keys: str) -> None:
    """App keys (g, i, o) from the lookup screen: its query field would take letters as text,
    so the focus moves to the results first (Tab, as a technician would)."""
    pilot.app.screen.query_one("#results").focus()
    await pilot.press(*keys)


async def open_group(pilot: Pilot[Any], group: str, *, clear: bool = False) -> None:
    """On the groups screen: filter to ``group`` (``clear``: the filter held another), wait for
    the groups table to take the focus back with that one row, then Enter lists its members."""
    screen = pilot.app.screen
    await pilot.press("slash", *(["ctrl+u"] if clear else []), *group, "enter")
    table = screen.query_one("#groups-table")
    await wait_for(
        pilot,
        lambda: table.has_focus and [r.id for r in screen.shown] == [group],
        what=f"the groups filtered to {group}",
    )
    await pilot.press("enter")
