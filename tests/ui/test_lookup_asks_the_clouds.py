"""The lookup's filters ask the clouds (not only the devices already known), a filter typed in
one fast burst stays a filter, and a cloud that is down is named as not asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fakes.fake_service import FakeService, Ids
from test_technician_navigation import SIZE, RecordingApp, ready
from textual.widgets import Input, Static
from ui_helpers import wait_for

from fieldtui.core.models import InstallationStatus
from fieldtui.service.api import FindResult
from fieldtui.service.connectivity import BackendState
from fieldtui.ui.screens.lookup import LookupScreen


class AskedFake(FakeService):
    """The fake, remembering what the lookup asked the clouds for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[dict[str, Any]] = []

    async def find(  # type: ignore[override]
        self, query: str, *, limit: int | None = None, **filters: Any
    ) -> AsyncIterator[FindResult]:
        self.asked.append({"query": query, **filters})
        async for item in super().find(query, limit=limit, **filters):
            yield item


def notes(app: RecordingApp) -> str:
    return str(app.screen.query_one("#lookup-clouds", Static).content)


async def test_a_status_filter_typed_in_one_burst_asks_the_clouds() -> None:
    fake = AskedFake()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"status:installed")
        box = app.screen.query_one("#query", Input)
        assert isinstance(app.screen, LookupScreen) and box.value == "status:installed"
        await wait_for(pilot, lambda: any(a.get("status") for a in fake.asked), what="the clouds asked")
        asked = next(a for a in fake.asked if a.get("status"))
        assert asked == {"query": "", "cloud": None, "group": None, "status": InstallationStatus.INSTALLED}
        screen = app.screen
        assert isinstance(screen, LookupScreen)
        await wait_for(pilot, lambda: any(r.id == Ids.THING for r in screen._shown), what="the thing")
        assert all(r.installation_status == "installed" for r in screen._shown)


async def test_a_quoted_group_and_a_cloud_alone_are_asked_of_the_clouds() -> None:
    fake = AskedFake()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        box = app.screen.query_one("#query", Input)
        box.value = 'group:"Plant room 2"'
        await wait_for(pilot, lambda: any(a.get("group") for a in fake.asked), what="the group asked")
        assert next(a for a in fake.asked if a.get("group"))["group"] == "Plant room 2"
        box.value = "cloud:fleet"
        await wait_for(pilot, lambda: any(a.get("cloud") == "fleet" for a in fake.asked), what="fleet asked")
        await wait_for(pilot, lambda: any(r.id == Ids.OFFLINE for r in app.screen._shown), what="its device")
        # An unknown value is said, and nothing is asked for it.
        box.value = "cloud:bogus"
        summary = app.screen.query_one("#lookup-summary", Static)
        await wait_for(pilot, lambda: "no cloud 'bogus'" in str(summary.content), what="the refusal")
        await pilot.pause(0.6)
        assert not any(a.get("cloud") == "bogus" for a in fake.asked)


async def test_a_scan_with_a_cloud_down_names_it_not_asked() -> None:
    fake = AskedFake()
    fake.connectivity.set_state("things", BackendState.OFFLINE, "things: connection refused")
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"TSPD04A1B00009999", "enter")
        await wait_for(pilot, lambda: any("not asked: things" in n for n in app.notified), what="the notice")
        notice = next(n for n in app.notified if "not asked: things" in n)
        assert "No cloud that answered" in notice and "gateways" in notice
        assert "No cloud knows" not in notice
        assert "not asked: things" in notes(app)
