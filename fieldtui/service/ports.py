"""What FleetService needs from the local store, as protocols (the SQLite store implements them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from fieldtui.core.models import Device, Group, InstallationRecord, Task

T = TypeVar("T")


class Cached(BaseModel, Generic[T]):
    """A value from the read cache with when it was fetched from its backend."""

    model_config = ConfigDict(frozen=True)

    value: T
    backend: str
    fetched_at: datetime


class ReadCache(Protocol):
    """The offline read cache: the last known devices, tasks, groups and history per backend."""

    async def store_devices(self, devices: Sequence[Device], fetched_at: datetime) -> None: ...

    async def cached_device(self, device_id: str) -> list[Cached[Device]]:
        """Every backend's last known copy of ``device_id`` (exact id match)."""
        ...

    async def search_devices(self, query: str, limit: int) -> list[Cached[Device]]:
        """Cached devices whose id or name contains ``query`` (case-insensitive)."""
        ...

    async def store_tasks(
        self, backend: str, device_id: str, tasks: Sequence[Task], fetched_at: datetime
    ) -> None: ...

    async def cached_tasks(self, device_id: str) -> list[Cached[list[Task]]]: ...

    async def store_groups(self, backend: str, groups: Sequence[Group], fetched_at: datetime) -> None: ...

    async def cached_groups(self, backend: str) -> Cached[list[Group]] | None: ...

    async def store_history(
        self, backend: str, device_id: str, history: Sequence[InstallationRecord], fetched_at: datetime
    ) -> None: ...

    async def cached_history(self, device_id: str) -> list[Cached[list[InstallationRecord]]]: ...
