"""A group's members marked and changed from the groups screen, over the in-memory port: one
move or status per device through the outbox, one summary, and each row's Change column
following its change (queued, synced, failed) without F5."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.fake_service import FakeService, Ids
from textual.widgets import OptionList, Static
from ui_helpers import notifications, open_group, press_from_lookup, service_ready, wait_for

from fieldtui.core.models import InstallationStatus
from fieldtui.service.api import GroupMember
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.groups import GroupsScreen
from fieldtui.ui.screens.status import StatusModal
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (80, 24)
#: The things devices gathered in one group: a plain one, an alerting one and a gateway that
#: DeviceHQ also holds (in its own group "north").
MEMBERS = [Ids.THING, Ids.ALERTING, Ids.GATEWAY]


def gathered(**kwargs: Any) -> FakeService:
    """The fake fleet with the three things devices in plant-roof."""
    fake = FakeService(**kwargs)
    for device in MEMBERS:
        copy = fake.cloud.copies[device]["things"]
        fake.cloud.copies[device]["things"] = copy.model_copy(update={"group": "plant-roof"})
    return fake


def cells(screen: GroupsScreen) -> dict[str, str]:
    """Device id -> what its Change cell says."""
    return {line.id: (line.change.words if line.change else "") for line in screen.members_table.objects}


async def open_members(pilot: Any, group: str) -> GroupsScreen:
    app = pilot.app
    await service_ready(pilot)
    await press_from_lookup(pilot, "g")
    await wait_for(
        pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
    )
    screen = app.screen
    assert isinstance(screen, GroupsScreen)
    await open_group(pilot, group)
    await wait_for(
        pilot,
        lambda: screen.members_of is not None and screen.members_of.id == group and bool(screen.members),
        what=f"the members of {group}",
    )
    await wait_for(pilot, lambda: screen.members_table.has_focus, what="the members focused")
    return screen


def shown_keys(screen: GroupsScreen) -> set[str]:
    """The descriptions the footer draws now."""
    return {str(key.description) for key in screen.query("FooterKey")}


async def test_three_marked_members_move_with_one_summary_and_rows_follow(make_fake_app: Any) -> None:
    fake = gathered(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "plant-roof")
        assert [m.id for m in screen.members] == sorted(MEMBERS)
        await pilot.pause()
        await wait_for(pilot, lambda: "Mark" in shown_keys(screen), what="the marking keys")
        # Nothing marked: the highlighted row is the target, so Move is offered; Unmark is not.
        assert {"Mark", "All", "Move", "Status"} <= shown_keys(screen)
        assert "Unmark" not in shown_keys(screen) and "Rename" not in shown_keys(screen)
        await pilot.press("space", "space")
        assert len(screen.marked) == 2
        await pilot.press("u")
        assert not screen.marked
        await pilot.press("a")
        assert screen.marked == set(MEMBERS)
        await wait_for(pilot, lambda: "Unmark" in shown_keys(screen), what="Unmark offered")
        title = str(screen.query_one("#members-title", Static).content)
        assert "3 marked" in title
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the picker")
        picker = app.screen
        assert isinstance(picker, GroupPickerModal)
        await wait_for(pilot, lambda: picker.loaded, what="the group list")
        assert picker.backend == "things" and sorted(picker.device_ids) == sorted(MEMBERS)
        await pilot.press(*"tower-lobby", "enter")
        await wait_for(
            pilot,
            lambda: any("Move 3 devices to tower-lobby" in n for n in notifications(app)),
            what="summary",
        )
        summaries = [n for n in notifications(app) if n.startswith("Move")]
        assert summaries == ["Move 3 devices to tower-lobby: 3 synced"], summaries
        # Each went to the cloud that holds the group: the gateway's DeviceHQ group is untouched.
        assert {fake.cloud.copies[d]["things"].group for d in MEMBERS} == {"tower-lobby"}
        assert fake.cloud.copies[Ids.GATEWAY]["gateways"].group == "north"
        assert {r.action.backend for r in fake.outbox.records()} == {"things"}
        assert all(r.action.precondition == {"group": "plant-roof"} for r in fake.outbox.records())
        # Without F5: the rows stay in sight, saying where they went; the group is read again.
        await wait_for(
            pilot,
            lambda: cells(screen) == dict.fromkeys(MEMBERS, "synced→tower-lobby"),
            what="the rows synced",
        )
        await wait_for(pilot, lambda: not screen.members and len(screen.left) == 3, what="the group re-read")
        assert "3 moved out" in str(screen.query_one("#members-title", Static).content)
        assert not screen.marked


async def test_marked_members_get_a_status_and_each_row_follows_its_change(make_fake_app: Any) -> None:
    fake = gathered()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "plant-roof")
        await pilot.press("space", "space")  # the first two: ALERTING and GATEWAY (sorted ids)
        marked = sorted(screen.marked)
        assert marked == sorted(MEMBERS)[:2]
        await pilot.press("s")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, StatusModal) and bool(app.screen.query("#status-options")),
            what="the status modal",
        )
        modal = app.screen
        assert "2 devices" in str(modal.query_one(".modal-title", Static).content)
        options = modal.query_one("#status-options", OptionList)
        index = [options.get_option_at_index(i).id for i in range(options.option_count)].index("uninstalled")
        await pilot.press(str(index + 1), "enter")
        await wait_for(
            pilot,
            lambda: any(n.startswith("Status 2 devices → uninstalled") for n in notifications(app)),
            what="the summary",
        )
        assert "2 queued" in next(n for n in notifications(app) if n.startswith("Status 2 devices"))
        await wait_for(
            pilot,
            lambda: all(cells(screen)[d] == "queued→uninstalled" for d in marked),
            what="the rows queued",
        )
        assert cells(screen)[sorted(MEMBERS)[2]] == ""
        records = {r.action.device: r for r in fake.outbox.records()}
        assert set(records) == set(marked)
        assert all(r.action.backend == "things" for r in records.values())
        assert all(r.action.precondition == {"installation_status": "installed"} for r in records.values())
        # The cloud takes one and refuses the other: each row says so, the refusal's words below.
        fake.outbox.apply_pending(only=records[marked[0]].queue_key)
        fake.fail(records[marked[1]].id, "installationStatus change refused by the plant")
        await wait_for(
            pilot,
            lambda: cells(screen)[marked[1]] == "failed→uninstalled",
            what="the failure on its row",
        )
        await wait_for(
            pilot, lambda: screen.members_table.objects[0].status == "uninstalled", what="the new status read"
        )
        assert cells(screen)[marked[0]] == "synced→uninstalled"
        assert fake.cloud.copies[marked[0]]["things"].installation_status is InstallationStatus.UNINSTALLED
        screen.members_table.move_cursor(row=1)
        await wait_for(
            pilot,
            lambda: "refused by the plant" in str(screen.query_one("#member-detail", Static).content),
            what="the reason under the list",
        )
        # One line for the batch when the last of its changes ended.
        await wait_for(
            pilot,
            lambda: any(
                "Status 2 devices → uninstalled: 1 synced, 1 failed" in n for n in notifications(app)
            ),
            what="the batch's end told once",
        )


async def test_status_is_not_offered_where_the_groups_cloud_keeps_none(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "north")
        await wait_for(pilot, lambda: "Move" in shown_keys(screen), what="the member keys")
        assert "Status" not in shown_keys(screen)
        await pilot.press("s")
        assert not isinstance(app.screen, StatusModal)


async def test_read_only_offers_marking_but_no_change(make_fake_app: Any) -> None:
    app = make_fake_app(gathered(read_only=True), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "plant-roof")
        await wait_for(pilot, lambda: "Mark" in shown_keys(screen), what="the member keys")
        assert not {"Move", "Status"} & shown_keys(screen)
        await pilot.press("a", "m", "s")
        assert not isinstance(app.screen, (GroupPickerModal, StatusModal, ConfirmModal))


async def test_member_keys_fit_80_columns_and_help_lists_them(make_fake_app: Any) -> None:
    app = make_fake_app(gathered())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "plant-roof")
        await pilot.press("space")
        await wait_for(pilot, lambda: "Unmark" in shown_keys(screen), what="Unmark offered")
        # Every key the members offer is drawn whole on the one footer line.
        assert {"Mark", "All", "Unmark", "Move", "Status"} <= shown_keys(screen), [
            (k.key_display, k.description) for k in screen.query("FooterKey")
        ]
        footer = app.screen.query_one("Footer")
        assert sum(key.region.width for key in footer.query("FooterKey")) <= 80
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen", what="help")
        text = app.screen._text
        for words in ("Mark", "All", "Unmark", "Move", "Status", "marks all"):
            assert words in text, words


async def test_marked_members_into_a_new_group_confirmed_first_and_a_conflict_on_its_row(
    make_fake_app: Any,
) -> None:
    fake = gathered()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "plant-roof")
        await pilot.press("space", "space")
        marked = sorted(screen.marked)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the picker")
        picker = app.screen
        assert isinstance(picker, GroupPickerModal)
        await wait_for(pilot, lambda: picker.loaded, what="the group list")
        await pilot.press(*"roof-east", "enter")
        # A group that does not exist is created only once the technician says so.
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        assert not fake.outbox.records()
        await pilot.press("y")
        await wait_for(pilot, lambda: len(fake.outbox.records()) == 3, what="the creation and two moves")
        created, *moved = fake.outbox.records()
        assert created.action.params.get("group") == "roof-east" and created.action.device is None
        moves = {r.action.device: r for r in moved}
        assert set(moves) == set(marked)
        fake.outbox.apply_pending(only=created.queue_key)  # the cloud creates the group first
        await wait_for(
            pilot,
            lambda: all(cells(screen).get(d) == "queued→roof-east" for d in marked),
            what="the rows queued",
        )
        # Someone moved one of them meanwhile: its row says conflict, and why, without F5.
        fake.conflict(moves[marked[0]].id, "the device is in tower-lobby now")
        await wait_for(pilot, lambda: cells(screen)[marked[0]] == "conflict→roof-east", what="the conflict")
        screen.members_table.move_cursor(
            row=[line.id for line in screen.members_table.objects].index(marked[0])
        )
        await wait_for(
            pilot,
            lambda: "tower-lobby now" in str(screen.query_one("#member-detail", Static).content),
            what="why, under the list",
        )


async def test_a_status_every_marked_member_already_has_queues_nothing(make_fake_app: Any) -> None:
    fake = gathered()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "plant-roof")
        await pilot.press("a", "s")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, StatusModal) and bool(app.screen.query("#status-options")),
            what="the status modal",
        )
        assert app.screen.current == "installed"  # marked as their status now
        await pilot.press("2", "enter")
        await wait_for(
            pilot, lambda: "3 devices are already installed." in notifications(app), what="the words"
        )
        assert not fake.outbox.records()
        assert screen.marked == set(MEMBERS)  # nothing was done to them: still marked


def test_an_outbox_read_older_than_what_the_screen_heard_does_not_undo_it() -> None:
    """The members' list re-reads the outbox while events keep coming: a 'sending' read a
    moment before the 'synced' event arrived must not put the row back to sending."""
    from datetime import UTC, datetime, timedelta

    from fieldtui.core.actions import ActionState, ActionType
    from fieldtui.ui.screens.group_rows import MemberChange

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    read = MemberChange(ActionType.MOVE_TO_GROUP, "roof", ActionState.SENDING, "", 7, t0)
    heard = MemberChange(ActionType.MOVE_TO_GROUP, "roof", ActionState.DONE, "", 7, t0 + timedelta(seconds=1))
    later_action = MemberChange(ActionType.MOVE_TO_GROUP, "cellar", ActionState.QUEUED, "", 8, t0)
    assert heard.newer_than(read) and not read.newer_than(heard)
    assert later_action.newer_than(heard) and not heard.newer_than(later_action)


class HeldMembersService(FakeService):
    """A group's members list that waits for the test once ``hold`` is set (a slow cloud)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold = False
        self.release = asyncio.Event()
        self.asked = asyncio.Event()

    async def group_members(self, backend: str, group: str) -> list[GroupMember]:
        if self.hold:
            self.asked.set()
            await self.release.wait()
        return await super().group_members(backend, group)


async def test_escape_while_the_members_reload_stays_on_the_groups(make_fake_app: Any) -> None:
    """Seen in the end-to-end walk: the members were being read again (after a move) when the
    technician pressed Escape; the answer reopened the members and took the focus back, so the
    next keys (/ to filter the groups) went to the members list."""
    fake = HeldMembersService()
    for device in MEMBERS:
        copy = fake.cloud.copies[device]["things"]
        fake.cloud.copies[device]["things"] = copy.model_copy(update={"group": "plant-roof"})
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, "plant-roof")
        fake.hold = True
        screen.groups_changed()  # a move queued elsewhere: the groups and members are read again
        await wait_for(pilot, lambda: fake.asked.is_set(), what="the members asked again")
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.groups_table.has_focus, what="the groups focused")
        fake.release.set()  # the cloud answers now, to a members list the technician left
        for _ in range(10):
            await pilot.pause(0.05)
        assert screen.groups_table.has_focus
        assert screen.members_of is None and not screen.members_table.display
