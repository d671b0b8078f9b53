"""Device records and cloud settings from the ``:`` command line.

``:create SERIAL owner_ref=O hardware_version=H`` (fleet), ``:register SERIAL UUID`` (DeviceHQ)
and ``:delete SERIAL [CLOUD]`` ask for confirmation in a modal that names the cloud and the
device, then queue the change in the outbox like every other change; ``:setting SERIAL
PROPERTY=VALUE`` sets one MQTT cloud setting and ``:edit SERIAL FIELD=VALUE …`` edits the
device's record (DeviceHQ description and location; fleet owner_ref, hardware_version, cohort,
``attributes.KEY``) — nothing is removed, so nothing is asked, and a field someone else changed
since the app read it is a conflict, not overwritten. On a device's screen ``:delete``,
``:edit FIELD=VALUE`` and ``:setting PROPERTY=VALUE`` mean that device. A cloud can be named
with ``cloud=NAME`` on any of them.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from fieldtui.core.ids import devicehq_uuid
from fieldtui.service.api import BackendInfo
from fieldtui.ui.app import FieldApp
from fieldtui.ui.modals.device_record import DeviceRecordModal, RecordChange
from fieldtui.ui.text import clean
from fieldtui.ui.writes import submit_write

#: verb -> (the capability it needs, the kind of cloud it is for (None: any), its usage).
VERBS: dict[str, tuple[str, str | None, str]] = {
    "create": ("device_lifecycle", "fleet", ":create SERIAL owner_ref=O hardware_version=H"),
    "register": ("device_lifecycle", "devicehq", ":register SERIAL UUID"),
    "delete": ("device_lifecycle", None, ":delete SERIAL [CLOUD]"),
    "setting": ("cloud_settings", None, ":setting SERIAL PROPERTY=VALUE"),
    "edit": ("device_update", None, ":edit SERIAL FIELD=VALUE …"),
}


class _Refused(Exception):
    """What to tell the technician instead of asking (a missing word, no such cloud)."""


def run_record_command(app: FieldApp, verb: str, argument: str) -> None:
    """Parse the line's words, then confirm (or, for a setting, queue) the change."""
    try:
        change = _parse(app, verb, _words(argument))
    except _Refused as refused:
        app.notify(str(refused), severity="warning", timeout=8)
        return
    if change.verb == "setting":
        ((prop, value),) = change.fields.items()
        app.run_worker(
            submit_write(
                app,
                f"Cloud setting {clean(prop)} of {clean(change.device)}",
                lambda w: w.set_cloud_setting(change.device, prop, value, backend=change.cloud),
            ),
            group="records",
        )
        return
    if change.verb == "edit":
        names = ", ".join(clean(name, 30) for name in change.fields)
        app.run_worker(
            submit_write(
                app,
                f"Edit {names} of {clean(change.device)}",
                lambda w: w.update_device(change.device, change.fields, backend=change.cloud),
            ),
            group="records",
        )
        return

    def answered(yes: bool | None) -> None:
        if yes:
            app.run_worker(_queue(app, change), group="records")
        else:
            app.notify(f"{change.what}: not queued", timeout=4)

    app.push_screen(DeviceRecordModal(change), answered)


async def _queue(app: FieldApp, change: RecordChange) -> None:
    if change.verb == "delete":
        await submit_write(app, change.what, lambda w: w.delete_device(change.cloud, change.device))
    else:
        await submit_write(
            app, change.what, lambda w: w.create_device(change.cloud, change.device, change.fields)
        )


def _parse(app: FieldApp, verb: str, words: list[str]) -> RecordChange:
    capability, kind, usage = VERBS[verb]
    named = [w.partition("=")[2] for w in words if w.startswith("cloud=")]
    words = [w for w in words if not w.startswith("cloud=")]
    open_device = _open_device(app)
    if open_device is not None and verb in ("delete", "edit", "setting") and (not words or "=" in words[0]):
        words = [open_device, *words]  # on a device's screen: that device
    if not words:
        raise _Refused(f"Which device? Type {usage}")
    device, rest = words[0], words[1:]
    fields: dict[str, Any] = {}
    if verb == "register":
        if len(rest) != 1:
            raise _Refused(f"Registering needs the gateway's uuid: {usage}")
        if devicehq_uuid(rest[0]) is None:
            raise _Refused(f"{clean(rest[0])!r} is not a uuid: 32 hexadecimal characters")
        fields = {"uuid": rest[0]}
    elif verb in ("create", "setting", "edit"):
        fields = _pairs(rest, usage, typed=verb == "setting")
        if verb == "setting" and len(fields) != 1:
            raise _Refused(f"One setting at a time: {usage}")
        if verb == "edit" and not fields:
            raise _Refused(f"Which field? {usage}")
    elif len(rest) > 1:
        raise _Refused(f"Too many words: {usage}")
    elif rest:
        named.append(rest[0])
    info = _cloud(app, device, capability, kind, named[-1] if named else None, usage)
    return RecordChange(verb, device, info.name, info.kind.value, fields)


def _words(argument: str) -> list[str]:
    """The line's words, a quoted value kept whole: ``description="pump room"``."""
    try:
        return shlex.split(argument)
    except ValueError as unbalanced:
        raise _Refused(f'{unbalanced}: close the quote, e.g. description="pump room"') from None


def _open_device(app: FieldApp) -> str | None:
    """The device whose screen is open (the command line was typed over it), else None."""
    from fieldtui.ui.screens.device import DeviceScreen

    screen = app.screen
    return screen.device_id if isinstance(screen, DeviceScreen) else None


def _pairs(words: list[str], usage: str, *, typed: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise _Refused(f"{clean(word)!r} is not KEY=VALUE: {usage}")
        value: Any = text
        if typed:
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        fields[key] = value
    return fields


def _cloud(
    app: FieldApp, device: str, capability: str, kind: str | None, named: str | None, usage: str
) -> BackendInfo:
    """The named cloud, checked; else the one capable cloud of the verb's kind, or the one
    capable cloud the device is known to."""
    service = app.service
    if service is None:
        raise _Refused("Not connected to the service yet; try again in a moment.")
    capable = [b for b in service.backends() if b.why_not(capability) is None]
    if named is not None:
        info = service.backend(named)
        if info is None:
            names = ", ".join(b.name for b in service.backends())
            raise _Refused(f"No cloud named {clean(named)!r}; configured: {names}")
        why = info.why_not(capability)
        if why is not None:
            raise _Refused(f"{info.name}: {why}")
        return info
    if kind is not None:
        capable = [b for b in capable if b.kind.value == kind]
    else:
        row = app.index.get(device)
        known = set(row.clouds) if row is not None else set()
        capable = [b for b in capable if b.name in known]
    if len(capable) == 1:
        return capable[0]
    if not capable:
        where = (
            f"no {kind} cloud is configured" if kind else f"no cloud that can do this knows {clean(device)}"
        )
        raise _Refused(f"{where}; name one: {usage} cloud=NAME")
    names = ", ".join(b.name for b in capable)
    raise _Refused(f"Which cloud? {names}: add cloud=NAME")
