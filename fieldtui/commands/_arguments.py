"""The parsers of ``devices``, ``groups`` and the change verbs, kept light: building the
command line must not import the service (``fieldtui`` with no command opens the app)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from fieldtui.core.models import InstallationStatus

#: Devices listed per cloud unless ``--limit`` says otherwise.
DEFAULT_LIMIT = 100


def timestamp(text: str) -> datetime:
    """An ISO 8601 date or time (a time without an offset is taken as UTC), for argparse."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time (use ISO 8601, e.g. 2024-05-01 or 2024-05-01T12:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_devices_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cloud", metavar="NAME", help="only this backend (its filters are checked)")
    parser.add_argument(
        "--query",
        "-q",
        metavar="TEXT",
        help="id or name, as the lookup finds it (DeviceHQ's own search; the others matched here)",
    )
    parser.add_argument("--group", metavar="GROUP", help="a group's members (things, DeviceHQ), as group:")
    parser.add_argument(
        "--status",
        choices=[status.value for status in InstallationStatus],
        help="installation status (things), as status:",
    )
    parser.add_argument("--release", action="append", default=[], metavar="VERSION", help="fleet; repeatable")
    parser.add_argument("--owner", action="append", default=[], metavar="REF", help="fleet; repeatable")
    parser.add_argument(
        "--hardware-version", action="append", default=[], metavar="HW", help="fleet; repeatable"
    )
    parser.add_argument("--since", type=timestamp, metavar="WHEN", help="last seen at or after (fleet)")
    parser.add_argument("--until", type=timestamp, metavar="WHEN", help="last seen at or before (fleet)")
    parser.add_argument(
        "--sort", metavar="KEY", help="sort key, - first for descending: --sort=-last_seen (fleet)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"per cloud (default {DEFAULT_LIMIT}; 0: all)",
    )


def add_groups_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", nargs="?", metavar="GROUP", help="list this group's members")
    parser.add_argument("--cloud", metavar="NAME", help="only this backend")


def add_change_arguments(sub: Any, command: Any) -> None:
    """The verbs' parsers; ``command(sub, name, help)`` makes one (with the global options)."""
    task = command(sub, "task", "create, cancel or delete a device's task (queued first)")
    task_sub = task.add_subparsers(dest="change", metavar="ACTION", required=True, parser_class=type(task))
    create = command(
        task_sub, "create", "create a task: TYPE is the cloud's task type, ITEM its catalogue id"
    )
    create.add_argument("device", metavar="DEVICE")
    create.add_argument("task_type", metavar="TYPE")
    create.add_argument("item", metavar="ITEM", nargs="?", help="the firmware/config/app id (or file id)")
    create.add_argument("--version", help="the app version (DeviceHQ install app)")
    create.add_argument(
        "--app-config", action="append", default=[], metavar="ID", help="app config id; repeatable"
    )
    create.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="more; repeatable")
    for name in ("cancel", "delete"):
        verb = command(task_sub, name, f"{name} a task")
        verb.add_argument("device", metavar="DEVICE")
        verb.add_argument("task_id", metavar="TASK_ID")

    cmd = command(sub, "command", "send a command to a device (queued first)")
    cmd_sub = cmd.add_subparsers(dest="change", metavar="ACTION", required=True, parser_class=type(cmd))
    send = command(cmd_sub, "send", "send a command: NAME as the cloud knows it, then KEY=VALUE parameters")
    send.add_argument("device", metavar="DEVICE")
    send.add_argument("name", metavar="NAME")
    send.add_argument("params", nargs="*", metavar="KEY=VALUE")

    group = command(sub, "group", "create, rename or delete a group of one cloud (queued first)")
    group_sub = group.add_subparsers(dest="change", metavar="ACTION", required=True, parser_class=type(group))
    g_create = command(group_sub, "create", "create a group")
    g_create.add_argument("cloud", metavar="CLOUD")
    g_create.add_argument("group", metavar="GROUP")
    g_create.add_argument("--description", help="what the group is for")
    g_rename = command(group_sub, "rename", "rename a group")
    g_rename.add_argument("cloud", metavar="CLOUD")
    g_rename.add_argument("group", metavar="GROUP")
    g_rename.add_argument("new_group", metavar="NEW")
    g_delete = command(group_sub, "delete", "delete a group")
    g_delete.add_argument("cloud", metavar="CLOUD")
    g_delete.add_argument("group", metavar="GROUP")

    edit = command(
        sub, "edit", "edit a device's record: FIELD=VALUE (queued first; a changed field is a conflict)"
    )
    edit.add_argument("device", metavar="DEVICE")
    edit.add_argument("fields", nargs="+", metavar="FIELD=VALUE")

    records = add_device_arguments(sub, command)
    device_verbs = [create, *(task_sub.choices[n] for n in ("cancel", "delete")), send, edit]
    for verb in device_verbs:
        verb.add_argument("--backend", metavar="NAME", help="the backend that knows the device")
    for verb in (*device_verbs, g_create, g_rename, g_delete, *records):
        verb.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_device_arguments(sub: Any, command: Any) -> list[argparse.ArgumentParser]:
    """``device create|register|delete|cloud-setting``; returns the verbs' parsers."""
    device = command(sub, "device", "create, register or delete a device record; set a cloud setting")
    verbs = device.add_subparsers(dest="change", metavar="ACTION", required=True, parser_class=type(device))
    create = command(verbs, "create", "create a fleet device: SERIAL owner_ref=... hardware_version=...")
    create.add_argument("device", metavar="SERIAL")
    create.add_argument("fields", nargs="*", metavar="FIELD=VALUE", help="owner_ref and hardware_version")
    register = command(verbs, "register", "register a DeviceHQ device with the account by serial and uuid")
    register.add_argument("device", metavar="SERIAL")
    register.add_argument("uuid", metavar="UUID", help="the device's uuid (32 hexadecimal characters)")
    delete = command(verbs, "delete", "delete a device record from one cloud (and all its records there)")
    delete.add_argument("device", metavar="DEVICE")
    for verb in (create, register):
        verb.add_argument("--cloud", metavar="NAME", help="the cloud (default: the one of its kind)")
    delete.add_argument("--cloud", metavar="NAME", required=True, help="the cloud to delete it from")
    for verb in (create, register, delete):
        verb.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    setting = command(verbs, "cloud-setting", "set one MQTT cloud setting: DEVICE PROPERTY=VALUE")
    setting.add_argument("device", metavar="DEVICE")
    setting.add_argument("setting", metavar="PROPERTY=VALUE", help="the value is JSON when it parses")
    setting.add_argument("--backend", metavar="NAME", help="the backend that knows the device")
    return [create, register, delete, setting]
