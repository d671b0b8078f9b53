"""``fieldtui device create|register|delete|cloud-setting``: device records and MQTT cloud
settings, queued in the outbox first and sent once.

``create`` makes a fleet device (document 004: serial, ``owner_ref``, ``hardware_version``);
``register`` associates a DeviceHQ gateway with the account (document 002: serial and uuid);
``delete`` removes a device record from one named cloud. These three ask for confirmation on a
terminal, naming the cloud and the device; ``--yes`` is for scripts, and without it a script
(no terminal, or ``--json``) is refused with exit 2 before anything is queued.
``cloud-setting`` sets one MQTT cloud setting (document 003 "Set Cloud Settings").
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from fieldtui.commands._session import session
from fieldtui.commands.changes import MAX_WAIT, _pairs, report
from fieldtui.config import LoadedConfig, load_config
from fieldtui.core.errors import ConfigError
from fieldtui.core.ids import devicehq_uuid, valid_id
from fieldtui.service.api import ActionRecord, FieldService, SyncMode

#: The kind of cloud each verb is for (the one configured backend of that kind is the default).
VERB_KIND = {"create": "fleet", "register": "devicehq"}


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    if args.change in ("create", "register", "delete"):
        args.cloud = _cloud(loaded, args)
        args.device = valid_id(args.device)
        if args.change == "register" and devicehq_uuid(args.uuid) is None:
            raise ConfigError(
                f"{args.uuid!r} is not a uuid: 32 hexadecimal characters (dashes and spaces are ignored)",
                hint="nothing was queued",
            )
        if not _confirmed(loaded, args):
            print("nothing queued")
            return 0
    return asyncio.run(_run(loaded, args))


def _cloud(loaded: LoadedConfig, args: argparse.Namespace) -> str:
    """The named cloud, checked; else the one configured cloud of the verb's kind."""
    names = sorted(loaded.backends)
    if args.cloud is not None:
        if args.cloud not in loaded.backends:
            raise ConfigError(
                f"no backend named {args.cloud!r} in this profile; allowed: {', '.join(names) or 'none'}"
            )
        return str(args.cloud)
    kind = VERB_KIND.get(args.change)
    fitting = [n for n in names if kind is not None and loaded.backends[n].kind == kind]
    if len(fitting) == 1:
        return fitting[0]
    example = fitting[0] if fitting else "NAME"
    raise ConfigError(
        f"which cloud? {args.change} needs --cloud NAME",
        hint=f"e.g. --cloud {example}; configured: {', '.join(names)}",
    )


def _question(loaded: LoadedConfig, args: argparse.Namespace) -> str:
    where = f"{args.cloud} ({loaded.backends[args.cloud].kind} cloud)"
    match args.change:
        case "create":
            fields = ", ".join(f"{k}={v}" for k, v in _create_fields(args).items())
            return f"Create device {args.device} on {where} with {fields}?"
        case "register":
            return f"Register device {args.device} (uuid {args.uuid}) with {where}?"
    return f"Delete device {args.device} from {where}? The cloud removes it and all its records."


def _confirmed(loaded: LoadedConfig, args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    question = _question(loaded, args)
    if args.json or not sys.stdin.isatty():
        raise ConfigError(
            f"not confirmed: {question[0].lower()}{question[1:]}",
            hint="pass --yes to confirm it from a script",
        )
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:  # Ctrl-D: no answer is no
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def _create_fields(args: argparse.Namespace) -> dict[str, Any]:
    return _pairs(args.fields, "field", typed=False)


async def _run(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    async with session(
        loaded, offline=bool(args.offline), sync=SyncMode.ONCE, read_only=bool(args.read_only)
    ) as service:
        record = await _submit(service, args)
        wait = min(MAX_WAIT, max((b.timeout for b in loaded.backends.values()), default=10.0) + 5.0)
        outcome = await service.writes.first_outcome(record, timeout=wait)
    return report(outcome, bool(args.json))


async def _submit(service: FieldService, args: argparse.Namespace) -> ActionRecord:
    writes = service.writes
    match args.change:
        case "create":
            return await writes.create_device(args.cloud, args.device, _create_fields(args))
        case "register":
            return await writes.create_device(args.cloud, args.device, {"uuid": args.uuid})
        case "delete":
            return await writes.delete_device(args.cloud, args.device)
    setting = _pairs([args.setting], "setting")
    ((prop, value),) = setting.items()
    return await writes.set_cloud_setting(args.device, prop, value, backend=args.backend)
