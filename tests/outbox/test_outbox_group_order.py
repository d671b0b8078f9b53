"""Group actions and the moves that name their group keep the order the technician made them.

Group actions and device actions sync in different queues (``Action.queue_key``); a move into
a group created in the same session must still reach the cloud after the group exists, and a
group's deletion after the moves into it, without making unrelated devices wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

from outbox_doubles import FAST

from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.service.store import OutboxStore
from fieldtui.service.writes import open_outbox


def _move(device: str, group: str, backend: str | None = "things") -> Action:
    return Action(type=ActionType.MOVE_TO_GROUP, device=device, backend=backend, params={"group": group})


def _group(kind: ActionType, group: str, new_group: str | None = None, backend: str = "things") -> Action:
    params: dict[str, Any] = {"group": group}
    if new_group is not None:
        params["new_group"] = new_group
    return Action(type=kind, device=None, backend=backend, params=params)


def _status(device: str) -> Action:
    return Action(
        type=ActionType.SET_INSTALLATION_STATUS,
        device=device,
        backend="things",
        params={"status": "installed"},
    )


async def _claim(store: OutboxStore) -> list[str]:
    return [c.record.describe() for c in await store.claim("me", limit=10, lease_seconds=30)]


async def test_a_move_waits_for_its_groups_creation_and_nothing_else_does(store: OutboxStore) -> None:
    create = await store.enqueue(_group(ActionType.CREATE_GROUP, "roof"))
    await store.enqueue(_move("D1", "roof"))
    await store.enqueue(_move("D2", "roof"))
    await store.enqueue(_move("D3", "basement"))  # another group: not held
    await store.enqueue(_move("D4", "roof", backend="other"))  # the same name in another cloud
    await store.enqueue(_status("D5"))  # an unrelated device: not held
    assert await _claim(store) == [
        "create group roof",
        "move D3 to group basement",
        "move D4 to group roof",
        "set D5 status to installed",
    ]
    held = await store.held_by((await store.list_actions([ActionState.QUEUED]))[0].id)
    assert [r.id for r in held] == [create.id]
    await store.complete("me", create.id)
    # Once the group exists, both moves go together: moves into one group do not serialise.
    assert await _claim(store) == ["move D1 to group roof", "move D2 to group roof"]


async def test_a_move_into_a_renamed_group_waits_for_the_rename(store: OutboxStore) -> None:
    rename = await store.enqueue(_group(ActionType.RENAME_GROUP, "old-roof", "roof"))
    await store.enqueue(_move("D1", "roof", backend=None))  # cloud unknown yet: may be this one
    assert await _claim(store) == ["rename group old-roof to roof"]
    await store.reschedule("me", rename.id, delay=0, message="down", uncertain=False)
    assert await _claim(store) == ["rename group old-roof to roof"]
    # A failed rename may never be sent: it holds its own queue, not the move.
    await store.settle_failed("me", rename.id, "refused")
    assert await _claim(store) == ["move D1 to group roof"]


async def test_a_group_deletion_waits_for_earlier_moves_into_it(store: OutboxStore) -> None:
    first = await store.enqueue(_move("D1", "roof"))
    await store.enqueue(_group(ActionType.DELETE_GROUP, "roof"))
    later = await store.enqueue(_move("D2", "roof"))  # made after the deletion: waits for it
    assert await _claim(store) == ["move D1 to group roof"]
    await store.complete("me", first.id)
    assert await _claim(store) == ["delete group roof"]
    held = await store.held_by(later.id)
    assert [r.describe() for r in held] == ["delete group roof"]


def _things_log(sim: Any) -> list[tuple[str, str]]:
    log = sim.admin("GET", "/_sim/mutations?backend=things").json()
    return [(m["method"], m["path"]) for m in log]


def _group_of(sim: Any, device: str) -> Any:
    response = sim.admin("GET", f"/_sim/inspect/things/{device}")
    assert response.status_code == 200, response.text
    return response.json()["group"]


async def test_offline_create_group_then_moves_reach_the_cloud_in_that_order(
    sim_setup: Any, sim_clean: Any
) -> None:
    devices = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[:2]
    group = "pump-room-7"
    sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as outbox:
        create = await outbox.writes.create_group("things", group, "made on site")
        moves = [await outbox.writes.move_to_group(d.id, group, backend="things") for d in devices]
        offline = await outbox.engine.drain()
        assert offline.remaining == {ActionState.QUEUED: 3} and not offline.done
        waiting = await outbox.writes.first_outcome(moves[0], timeout=0.1)
        assert waiting.status == "queued" and f"create group {group}" in waiting.reason

        sim_clean.admin("DELETE", "/_sim/faults")
        await asyncio.sleep(0.25)
        online = await outbox.engine.drain()
        assert online.ok and online.remaining == {}
        assert {r.id for r in online.done} == {create.id, *(m.id for m in moves)}
    log = _things_log(sim_clean)
    created_at = [i for i, (method, path) in enumerate(log) if method == "POST" and path.endswith("/groups")]
    assert len(created_at) == 1
    for device in devices:
        moved_at = [i for i, (_m, path) in enumerate(log) if path.endswith(f"/things/{device.id}/group")]
        assert len(moved_at) == 1 and moved_at[0] > created_at[0]  # once, after the group exists
        assert _group_of(sim_clean, device.id) == group


async def test_offline_move_then_group_deletion_keeps_that_order(sim_setup: Any, sim_clean: Any) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[0]
    sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as outbox:
        create = await outbox.writes.create_group("things", "to-go")
        move = await outbox.writes.move_to_group(device.id, "to-go", backend="things")
        delete = await outbox.writes.delete_group("things", "to-go")
        await outbox.engine.drain()
        sim_clean.admin("DELETE", "/_sim/faults")
        await asyncio.sleep(0.25)
        online = await outbox.engine.drain()
        assert online.ok and {r.id for r in online.done} == {create.id, move.id, delete.id}
    kinds = {("POST", "/groups"): "create", ("POST", "/group"): "move", ("DELETE", "/groups/to-go"): "delete"}
    order = [
        kind
        for method, path in _things_log(sim_clean)
        for (m, end), kind in kinds.items()
        if m == method and path.endswith(end)
    ]
    assert order == ["create", "move", "delete"]
    assert _group_of(sim_clean, device.id) in (None, "unassigned")  # deleting a group unassigns
