"""Moving devices to a group: one picker per cloud, then one outbox move per device.

Each move carries the group the technician saw as its precondition, so a device moved by
someone else meanwhile becomes a conflict rather than a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from fieldtui.service.api import ActionRecord
from fieldtui.ui.app import FieldApp
from fieldtui.ui.backends import offering
from fieldtui.ui.modals.group_picker import GroupChoice, GroupPickerModal, rules_of
from fieldtui.ui.text import batch_words, clean
from fieldtui.ui.writes import first_outcomes, queue_batch


@runtime_checkable
class GroupsListener(Protocol):
    """A screen that lists groups: told when moves may have changed their members."""

    def groups_changed(self) -> None: ...


def _device_backend(app: FieldApp, device_id: str, capable: list[str]) -> tuple[str | None, str | None]:
    """(backend, refusal): the group-capable cloud that holds ``device_id``, or why there is none."""
    row = app.index.get(device_id)
    if row is None or not row.clouds:
        if len(capable) == 1:
            return capable[0], None
        return None, "not looked up yet: open it first so the app knows its cloud"
    for cloud in row.clouds:
        if cloud in capable:
            return cloud, None
    service = app.service
    kinds = []
    for cloud in row.clouds:
        info = service.backend(cloud) if service is not None else None
        kinds.append(info.kind.value if info is not None else cloud)
    kinds_text = ", ".join(dict.fromkeys(kinds))
    return None, f"its cloud ({kinds_text}) has no groups"


def move_devices(
    app: FieldApp,
    device_ids: list[str],
    seen: Mapping[str, str | None] | None = None,
    *,
    backend: str | None = None,
) -> None:
    """Ask for a group, then queue one move per device (precondition: the group each was seen in).

    ``seen`` maps device id to the group the technician saw it in (a group's member list);
    otherwise the app's index says (what the lookup screen and the device screen showed).
    ``backend``: the cloud that holds them all (a group's members: the group's cloud, whatever
    other cloud also knows a device), so none has to be looked up first.
    """
    if not device_ids:
        app.notify("No device to move: mark some with space, or highlight one.", severity="warning")
        return
    if app.read_only:
        app.notify("Read-only: devices cannot be moved.", severity="warning")
        return
    if app.service is None:
        app.notify("Not connected to the service yet; try again in a moment.", severity="warning")
        return
    capable = [info.name for info in offering(app.service, "groups")]
    if not capable:
        app.notify("None of the configured clouds has groups.", severity="warning")
        return
    by_backend: dict[str, list[str]] = {}
    refused: list[str] = []
    for device_id in device_ids:
        cloud, why = (backend, None) if backend is not None else _device_backend(app, device_id, capable)
        if cloud is None:
            refused.append(f"{clean(device_id, 30)}: {why}")
        else:
            by_backend.setdefault(cloud, []).append(device_id)
    if refused:
        app.notify(
            "Not moved: " + "; ".join(refused[:5]) + (" …" if len(refused) > 5 else ""), severity="warning"
        )
    seen_groups: dict[str, str | None] = {}
    for ids in by_backend.values():
        for device_id in ids:
            if seen is not None and device_id in seen:
                seen_groups[device_id] = seen[device_id]
            else:
                row = app.index.get(device_id)
                seen_groups[device_id] = (row.group or None) if row is not None else None
    _pick_next(app, list(by_backend.items()), seen_groups)


def _pick_next(app: FieldApp, pending: list[tuple[str, list[str]]], seen: dict[str, str | None]) -> None:
    """One picker per cloud, one after the other."""
    if not pending:
        return
    (backend, ids), rest = pending[0], pending[1:]
    currents = {seen.get(i) for i in ids}
    current = next(iter(currents)) if len(currents) == 1 else None

    def chosen(choice: GroupChoice | None) -> None:
        if choice is not None:
            app.run_worker(queue_moves(app, choice, ids, seen), group="group-moves")
        _pick_next(app, rest, seen)

    app.push_screen(GroupPickerModal(backend, ids, current), chosen)


async def queue_moves(
    app: FieldApp, choice: GroupChoice, device_ids: list[str], seen: Mapping[str, str | None]
) -> list[tuple[str, str]]:
    """Queue the (optional) group creation and one move per device; tell how the first attempts went."""
    if app.service is None:
        app.notify("Not connected to the service yet; nothing was queued.", severity="warning")
        return []
    writes = app.service.writes
    if choice.create and rules_of(app, choice.backend).management_refused is None:
        try:
            created = await writes.create_group(choice.backend, choice.group, choice.description)
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said, nothing moved
            app.notify(f"Group {clean(choice.group)} not created: {clean(exc)}", severity="error", timeout=10)
            return []
        # Online, the group must exist before the moves reach the cloud: wait for its first attempt.
        ((status, reason),) = await first_outcomes(writes, [created])
        if status in ("failed", "conflict"):
            app.notify(
                f"Group {clean(choice.group)} not created: {clean(reason)}", severity="error", timeout=10
            )
            return [(status, reason)]

    async def queue_one(device_id: str, before: str | None) -> ActionRecord:
        return await writes.move_to_group(
            device_id, choice.group, backend=choice.backend, precondition={"group": before}
        )

    def what(count: int, first: str) -> str:
        return f"Move {batch_words(count, first)} to {clean(choice.group, 40)}"

    _, outcomes = await queue_batch(app, device_ids, seen, choice.group, queue_one, what)
    for screen in app.screen_stack:
        if isinstance(screen, GroupsListener):
            screen.groups_changed()
    return outcomes
