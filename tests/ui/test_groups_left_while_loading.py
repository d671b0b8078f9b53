"""The Groups screen left while the clouds still answer (Escape, or the app closing): seen
under a slow clock, a listing that arrived after the screen's widgets were taken down ended the
app with a traceback (NoMatches '#groups-summary'). A late answer draws nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.fake_service import FakeService
from textual.widgets import Static
from ui_helpers import press_from_lookup, service_ready, wait_for

from fieldtui.service.api import GroupListing, GroupMember
from fieldtui.ui.screens.groups import GroupsScreen
from fieldtui.ui.screens.lookup import LookupScreen


class LateClouds(FakeService):
    """Answers groups and members only once the screen that asked has lost its widgets (its
    own Unmount, which stops its workers, comes after its children's)."""

    def __init__(self) -> None:
        super().__init__()
        self.watching: Static | None = None
        self.answered_late = 0

    async def _after_teardown(self) -> None:
        while self.watching is None or self.watching.is_attached:  # noqa: ASYNC110 - no event says so
            await asyncio.sleep(0)
        self.answered_late += 1

    async def groups(self, backend: str) -> GroupListing:
        await self._after_teardown()
        return await super().groups(backend)

    async def group_members(self, backend: str, group: str) -> list[GroupMember]:
        await self._after_teardown()
        return await super().group_members(backend, group)


async def test_groups_answered_after_escape_draw_nothing_and_the_app_goes_on(make_fake_app: Any) -> None:
    fake = LateClouds()
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen), what="the groups screen")
        left = app.screen
        fake.watching = left.query_one("#groups-summary", Static)
        await pilot.press("escape")
        await wait_for(pilot, lambda: fake.answered_late > 0, what="the late answer")
        for _ in range(10):
            await pilot.pause(0.02)
        assert isinstance(app.screen, LookupScreen)
        assert app.is_running and app.return_code in (None, 0)
        # The app still works: Groups opens again and lists the groups.
        fake.watching = None
        await press_from_lookup(pilot, "g")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen), what="groups again")
        again = app.screen
        fake.watching = Static()  # never attached: answers at once
        await wait_for(pilot, lambda: bool(again.rows), what="the groups listed")
