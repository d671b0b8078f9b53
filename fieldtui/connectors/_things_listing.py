"""The things API's only way to list things: every deployment group's members (document 001).

Document 001 has no thing listing and no search, and a thing carries no name (thing info is
battery, timestamp, location, gateway and version). So a search, a ``cloud:things`` listing and
a status filter list the groups (``GET /groups/``, plus the implicit ``unassigned``), then each
group's members (``GET /groups/{id}/things``), a few at a time, and match tuids on this side.
A status filter then reads each member's current installation (``installations?limit=1``), the
matches in full. Every scan stops at a time budget and a member cap, and says how far it got.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fieldtui.core.errors import NotFound, Rejected
from fieldtui.core.models import Device, Group, InstallationStatus

#: The implicit group of every thing without one (listed by ``GET /groups/unassigned/things``).
UNASSIGNED = "unassigned"
#: Groups (or things) read at once.
CONCURRENCY = 8
#: A scan looks at most at this many things.
SCAN_CAP = 20_000
#: A scan's own time bound when its caller gives none.
SCAN_SECONDS = 3.0


@dataclass(slots=True)
class Members:
    """What a scan of the groups found: tuid -> group, and why it stopped short (None: it did not)."""

    groups: dict[str, str]
    partial: str | None = None


class ThingsLister:
    """Scans for one connector, through the reads it is given (no HTTP of its own)."""

    def __init__(
        self,
        *,
        list_groups: Callable[[], Awaitable[list[Group]]],
        group_members: Callable[[str], Awaitable[list[str]]],
        get_device: Callable[[str], Awaitable[Device]],
        current_status: Callable[[str], Awaitable[InstallationStatus | None]],
    ) -> None:
        self._list_groups = list_groups
        self._group_members = group_members
        self._get_device = get_device
        self._current_status = current_status

    async def members(self, deadline: float, group: str | None = None) -> Members:
        """Every group's members (or one group's), until ``deadline`` (a monotonic time)."""
        if group is not None:
            return Members({tuid: group for tuid in await self._group_members(group)})
        names = [g.id for g in await self._list_groups()]
        names = [*dict.fromkeys([*names, UNASSIGNED])]
        found: dict[str, str] = {}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(name: str) -> None:
            async with gate:
                try:
                    tuids = await self._group_members(name)
                except (NotFound, Rejected):
                    return  # deleted (or never listable) meanwhile
                for tuid in tuids:
                    found.setdefault(tuid, name)

        tasks = [asyncio.ensure_future(one(name)) for name in names]
        done, pending = (
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
            if tasks
            else (
                set(),
                set(),
            )
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a failure of the cloud is the caller's error, not a partial answer
        partial = None
        if pending:
            partial = f"looked at {len(names) - len(pending)} of {len(names)} groups before the time ran out"
        if len(found) > SCAN_CAP:
            found = dict(list(found.items())[:SCAN_CAP])
            partial = f"looked at the first {SCAN_CAP:,} things"
        return Members(found, partial)

    async def read(self, tuids: list[str], deadline: float) -> AsyncIterator[list[Device]]:
        """The things in full, a few at a time, in batches as they come (gone ones left out)."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(tuid: str) -> Device | None:
            async with gate:
                try:
                    return await self._get_device(tuid)
                except NotFound:
                    return None  # left meanwhile

        tasks: list[asyncio.Future[Device | None]] = [asyncio.ensure_future(one(tuid)) for tuid in tuids]
        try:
            for batch in _in_batches(tasks, CONCURRENCY):
                left = deadline - time.monotonic()
                done, _ = await asyncio.wait(batch, timeout=max(0.0, left))
                devices = [d for t in batch if t in done and (d := t.result()) is not None]
                if devices:
                    yield devices
                if len(done) < len(batch):
                    return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def with_status(
        self, tuids: list[str], status: InstallationStatus, deadline: float
    ) -> tuple[list[str], int]:
        """Those of ``tuids`` whose current installation status is ``status``, and how many
        were read before ``deadline``."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(tuid: str) -> InstallationStatus | None:
            async with gate:
                try:
                    return await self._current_status(tuid)
                except NotFound:
                    return None

        tasks = {asyncio.ensure_future(one(tuid)): tuid for tuid in tuids}
        done, pending = (
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
            if tasks
            else (set(), set())
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        matching = [tasks[t] for t in done if t.result() == status]
        order = {tuid: i for i, tuid in enumerate(tuids)}
        matching.sort(key=order.__getitem__)
        return matching, len(done)


def _in_batches(
    items: list[asyncio.Future[Device | None]], size: int
) -> list[list[asyncio.Future[Device | None]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


__all__ = ["CONCURRENCY", "SCAN_CAP", "SCAN_SECONDS", "UNASSIGNED", "Members", "ThingsLister"]
