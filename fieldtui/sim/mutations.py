"""The mutation log: every change a simulated cloud accepted, so tests can prove "exactly once"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
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


#: Request fields that carry a credential: the log (served at ``/_sim/mutations``) keeps that
#: the field was sent, never its value.
SECRET_FIELDS = frozenset({"client_secret", "password", "api_key", "access_key", "secret"})
REDACTED = "[redacted]"


def without_secrets(body: Any) -> Any:
    """``body`` with the value of every credential field replaced, at any depth."""
    if isinstance(body, dict):
        return {
            key: REDACTED if key in SECRET_FIELDS and value is not None else without_secrets(value)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [without_secrets(item) for item in body]
    return body


class MutationLog:
    def __init__(self) -> None:
        self._entries: list[Mutation] = []

    def record(self, mutation: Mutation) -> None:
        self._entries.append(replace(mutation, body=without_secrets(mutation.body)))

    def entries(self, backend: str | None = None) -> list[Mutation]:
        if backend is None:
            return list(self._entries)
        return [m for m in self._entries if m.backend == backend]

    def clear(self) -> None:
        self._entries.clear()
