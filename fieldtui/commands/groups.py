"""``fieldtui groups [GROUP] [--cloud C] [--json]``: each cloud's groups, or one group's members.

A group's members come with what a technician checks before moving them: installation
status, online and battery (from the cache, and read from the cloud for the members the cache
does not hold, bounded). Without ``--cloud``, every cloud with groups is asked for GROUP and
those that hold it answer.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from fieldtui.commands import _output as out
from fieldtui.commands._session import session, warn
from fieldtui.config import load_config
from fieldtui.core.errors import BackendError, ConfigError, NotFound
from fieldtui.service.api import FieldService, GroupListing, GroupMember


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    if args.cloud is not None and args.cloud not in loaded.backends:
        allowed = ", ".join(loaded.backends) or "none configured"
        raise ConfigError(f"no backend named {args.cloud!r} in this profile; allowed: {allowed}")

    async def answer() -> int:
        async with session(loaded, offline=bool(args.offline)) as service:
            names = _with_groups(service, args.cloud)
            if args.group is None:
                return _show_groups(await asyncio.gather(*(service.groups(n) for n in names)), args.json)
            return await _show_members(service, names, args.group, args.json)

    return asyncio.run(answer())


def _with_groups(service: FieldService, cloud: str | None) -> list[str]:
    if cloud is not None:
        info = service.backend(cloud)
        why = info.why_not("groups") if info is not None else None
        if why is not None:
            raise ConfigError(why)
        return [cloud]
    return [b.name for b in service.backends() if b.why_not("groups") is None]


def _show_groups(listings: list[GroupListing], as_json: bool) -> int:
    if as_json:
        document = {
            "clouds": [
                {
                    "backend": listing.backend,
                    "groups": [g.model_dump(mode="json") for g in listing.groups],
                    "fetched_at": listing.fetched_at.isoformat() if listing.fetched_at else None,
                    "error": listing.error,
                }
                for listing in listings
            ]
        }
        print(out.dumps(document, indent=2))
    else:
        for listing in listings:
            cached = f" (cached {out.when(listing.fetched_at)})" if listing.fetched_at else ""
            print(out.clean_line(f"{listing.backend}: {len(listing.groups)} groups{cached}"))
            for group in listing.groups:
                count = "-" if group.member_count is None else str(group.member_count)
                about = f"  {group.description}" if group.description else ""
                print(out.clean_line(f"  {out.pad(group.id, 30)} {count:>6} members{about}"))
    for listing in listings:
        if listing.error:
            warn(f"{listing.backend}: {listing.error}")
    return 0


async def _show_members(service: FieldService, names: list[str], group: str, as_json: bool) -> int:
    async def one(name: str) -> tuple[str, list[GroupMember] | BackendError]:
        try:
            members = await service.group_members(name, group)
        except BackendError as exc:
            return name, exc
        if not members:
            # A cloud whose groups are a free-text attribute (DeviceHQ) answers "no members"
            # for a group it has never heard of: an empty group must be one it lists.
            listing = await service.groups(name)
            if listing.error is None and group not in {g.id for g in listing.groups}:
                return name, NotFound(f"no group {group!r}", backend=name)
        return name, members

    answers = await asyncio.gather(*(one(n) for n in names))
    found = {name: members for name, members in answers if not isinstance(members, BaseException)}
    failed = {name: exc for name, exc in answers if isinstance(exc, BackendError)}
    if not found:
        if len(names) == 1 and names[0] in failed:
            raise failed[names[0]]
        if all(isinstance(exc, NotFound) for exc in failed.values()):
            raise NotFound(f"no cloud has a group {group!r}")
        reasons = "; ".join(f"{n}: {exc.message}" for n, exc in failed.items())
        raise ConfigError(f"no cloud answered for group {group!r} ({reasons})")
    if as_json:
        document: dict[str, Any] = {
            "group": group,
            "clouds": [
                {"backend": name, "members": [_member_json(m) for m in members]}
                for name, members in found.items()
            ],
            "errors": {n: exc.message for n, exc in failed.items() if not isinstance(exc, NotFound)},
        }
        print(out.dumps(document, indent=2))
    else:
        for name, members in found.items():
            print(out.clean_line(f"{name}: group {group}, {len(members)} members"))
            for m in members:
                print(out.clean_line(_member_line(m)))
    for name, exc in failed.items():
        if not isinstance(exc, NotFound):
            warn(f"{name}: {exc.message}")
    return 0


def _member_json(member: GroupMember) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "installation_status": member.installation_status.value if member.installation_status else None,
        "online": member.online,
        "battery": member.battery,
    }


def _member_line(member: GroupMember) -> str:
    status = member.installation_status.value if member.installation_status else "-"
    online = {True: "online", False: "offline", None: "-"}[member.online]
    battery = "-" if member.battery is None else f"{member.battery:g}%"
    return f"  {out.pad(member.id, 28)} {out.pad(member.name or '-', 18)} {out.pad(status, 11)} {out.pad(online, 7)} {battery}"
