"""The changes the app can make, as CLI verbs: queued in the outbox first, then sent once.

``task create|cancel|delete``, ``command send``, ``group create|rename|delete`` and ``edit``
(a device record: DeviceHQ description and location; fleet owner_ref, hardware_version,
cohort and ``attributes.KEY``). Each goes through the port's writes exactly as ``set-status`` and ``move`` do: the
action is on disk before anything is sent, with the precondition its already-applied check
needs; the command then waits a bounded while for the first attempt and says where it stands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from fieldtui.commands._errors import EXIT_CONFLICT_OR_FAILED, EXIT_NOT_FOUND, EXIT_OK
from fieldtui.commands._output import clean_line, dumps
from fieldtui.commands._session import session
from fieldtui.commands.write import print_outcome
from fieldtui.config import LoadedConfig, load_config
from fieldtui.core.errors import ConfigError, DeviceNotFound
from fieldtui.service.api import ActionRecord, BackendInfo, FieldService, SyncMode, TaskKind, WriteOutcome

#: The longest the first attempt is waited for.
MAX_WAIT = 30.0


def _pairs(items: list[str], what: str, *, typed: bool = True) -> dict[str, Any]:
    """``KEY=VALUE`` arguments. ``typed``: a VALUE that is JSON (a number, a list, ``null``) is
    taken as such (command parameters); else only a list, an object or ``null`` is, and the rest
    stays text (a record field such as ``owner_ref=0042`` or ``description=true`` is words)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} {item!r} is not KEY=VALUE", hint="e.g. interval=60 or name=pump-3")
        value: Any = text
        if typed or text.strip() == "null" or text.strip()[:1] in ("[", "{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        params[key.strip()] = value
    return params


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    return asyncio.run(_run(loaded, args))


async def _run(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    async with session(
        loaded, offline=bool(args.offline), sync=SyncMode.ONCE, read_only=bool(args.read_only)
    ) as service:
        if args.command == "task" and args.change == "create" and args.item is None:
            return await _show_choices(service, args)
        record = await _submit(service, args)
        wait = min(MAX_WAIT, max((b.timeout for b in loaded.backends.values()), default=10.0) + 5.0)
        outcome = await service.writes.first_outcome(record, timeout=wait)
    return report(outcome, bool(args.json))


async def _submit(service: FieldService, args: argparse.Namespace) -> ActionRecord:
    writes = service.writes
    backend: str | None = getattr(args, "backend", None)
    match args.command, getattr(args, "change", None):
        case "task", "create":
            backend = backend or _task_cloud(service, args.task_type)
            params = await _task_params(service, backend, args)
            return await writes.create_task(args.device, args.task_type, params, backend=backend)
        case "task", "cancel":
            return await writes.cancel_task(args.device, args.task_id, backend=backend)
        case "task", "delete":
            return await writes.delete_task(args.device, args.task_id, backend=backend)
        case "command", "send":
            params = _pairs(args.params, "parameter")
            return await writes.send_command(args.device, args.name, params, backend=backend)
        case "group", "create":
            return await writes.create_group(args.cloud, args.group, args.description)
        case "group", "rename":
            return await writes.rename_group(args.cloud, args.group, args.new_group)
        case "group", "delete":
            return await writes.delete_group(args.cloud, args.group)
        case "edit", _:
            return await writes.update_device(
                args.device, _pairs(args.fields, "field", typed=False), backend=backend
            )
    raise ConfigError(f"unknown change {args.command} {args.change}")


async def _show_choices(service: FieldService, args: argparse.Namespace) -> int:
    """``task create DEVICE TYPE`` without an item: the cloud's catalogue for that task type,
    by id (nothing is queued)."""
    backend = getattr(args, "backend", None) or _task_cloud(service, args.task_type)
    info = service.backend(backend) if backend is not None else None
    kind = _kind(info, args.task_type) if info is not None else None
    if kind is None or not kind.source:
        what = "a file id (digits)" if kind is not None else "the id of what to use"
        raise ConfigError(
            f"{args.task_type} needs {what}", hint=f"fieldtui task create {args.device} {args.task_type} ID"
        )
    items = await service.catalogue(
        backend or "", kind.source, *await _catalogue_args(service, kind, args.device)
    )
    if args.json:
        choices = [{"id": i.id, "label": i.label, "model": i.model} for i in items]
        print(dumps({"backend": backend, "task_type": args.task_type, "choices": choices}, indent=2))
    else:
        print(clean_line(f"{backend}: {kind.label}: {len(items)} choices (give one by id)"))
        for item in items:
            print(clean_line(f"  {item.id}  {item.label}"))
    return EXIT_OK


async def _catalogue_args(service: FieldService, kind: TaskKind, device: str) -> tuple[str, ...]:
    """The device's installed apps are asked by device; the other lists by its model (what is
    made for its family, or for any model), as the app offers them."""
    if kind.source == "device_apps":
        return (device,)
    model = (await service.device(device)).device.model
    return (model,) if model else ()


def _task_cloud(service: FieldService, task_type: str) -> str | None:
    """The one cloud that declares ``task_type`` (None: let the outbox find the device's)."""
    declaring = [b.name for b in service.backends() if any(k.task_type == task_type for k in b.task_kinds)]
    return declaring[0] if len(declaring) == 1 else None


def _kind(info: BackendInfo, task_type: str) -> TaskKind | None:
    if not info.task_kinds:
        return None
    for kind in info.task_kinds:
        if kind.task_type == task_type:
            return kind
    allowed = ", ".join(dict.fromkeys(k.task_type for k in info.task_kinds))
    raise ConfigError(f"{info.name} has no task type {task_type!r}; allowed: {allowed}")


async def _task_params(
    service: FieldService, backend: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    """The task's attributes as the app builds them: the chosen item's id under the kind's
    attribute, checked against the cloud's catalogue (a file id: digits)."""
    params = _pairs(args.param, "parameter")
    info = service.backend(backend) if backend is not None else None
    kind = _kind(info, args.task_type) if info is not None else None
    if kind is None:
        if args.item is not None:
            params.setdefault("id", args.item)
        return params
    if args.item is None:  # a listing kind without an item shows its choices (see _run)
        raise ConfigError(f"{args.task_type} needs a file id (digits)")
    if not kind.source:
        if not args.item.isdigit():
            raise ConfigError(f"{args.task_type} takes a file id (digits), not {args.item!r}")
    elif not service.offline:
        items = await service.catalogue(
            backend or "", kind.source, *await _catalogue_args(service, kind, args.device)
        )
        if items and args.item not in {i.id for i in items}:
            some = ", ".join(i.id for i in items[:8])
            raise ConfigError(f"{backend} has no {kind.source} {args.item!r}; for example: {some}")
    params[kind.attribute] = args.item
    if args.version:
        params["version"] = args.version
    if args.app_config:
        params["config_ids"] = list(args.app_config)
    return params


def report(outcome: WriteOutcome, as_json: bool) -> int:
    """Where the change stands, as ``set-status`` says it (exit 6 when refused or in conflict)."""
    unknown = outcome.status == "failed" and outcome.reason.startswith("no cloud knows")
    print_outcome(outcome, as_json)
    if unknown:
        if not as_json:
            raise DeviceNotFound(outcome.reason)
        return EXIT_NOT_FOUND
    return EXIT_CONFLICT_OR_FAILED if outcome.status in ("failed", "conflict") else EXIT_OK
