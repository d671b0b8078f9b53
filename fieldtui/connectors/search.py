"""Search answered page by page, for connectors whose cloud has no search of its own.

Such a connector lists and filters on the client: it yields each page's matches as they come
(so a caller can show them at once), stops within a time budget, and says so when it stopped
before the end of the list.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from fieldtui.core.models import Device


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Matches found since the previous page (possibly none)."""

    devices: list[Device] = field(default_factory=list)
    #: On the last page only: why the search stopped before it had looked at every device
    #: (``None`` when the answer is complete).
    partial: str | None = None


@runtime_checkable
class PagedSearch(Protocol):
    def search_pages(
        self, query: str, *, limit: int | None = None, budget: float | None = None
    ) -> AsyncGenerator[SearchPage, None]:
        """Matches of ``query`` as they are found, at most ``limit`` of them, searching for at
        most ``budget`` seconds (the connector's own bound when None)."""
        ...


__all__ = ["PagedSearch", "SearchPage"]
