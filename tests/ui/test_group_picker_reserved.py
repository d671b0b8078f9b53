"""A things cloud that lists its reserved "unassigned" group does not break the group picker."""

from __future__ import annotations

from fakes.fake_service import FakeService
from test_technician_navigation import SIZE, RecordingApp, open_picker, ready
from textual.widgets import OptionList

from fieldtui.core.models import Group


async def test_a_listed_unassigned_group_is_offered_once_as_what_it_means() -> None:
    fake = FakeService()
    fake.cloud.groups.setdefault("things", []).append(Group(backend="things", id="unassigned"))
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        picker = await open_picker(pilot)
        options = picker.query_one("#group-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids.count("group:unassigned") == 1, ids
