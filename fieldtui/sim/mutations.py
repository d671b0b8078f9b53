"""The mutation log: every change a simulated cloud accepted, so tests can prove "exactly once"."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Mutation:
    time: float  # the simulator's clock (unix seconds)
    backend: str
    method: str
    path: str  # the full request path, prefix included
    query: str
    #: The request's JSON body; the raw text when it was not JSON; None when empty.
    body: Any
    status: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MutationLog:
    def __init__(self) -> None:
        self._entries: list[Mutation] = []

    def record(self, mutation: Mutation) -> None:
        self._entries.append(mutation)

    def entries(self, backend: str | None = None) -> list[Mutation]:
        if backend is None:
            return list(self._entries)
        return [m for m in self._entries if m.backend == backend]

    def clear(self) -> None:
        self._entries.clear()
