"""The shape every simulated REST cloud takes; the server mounts each one under its ``prefix``.

A cloud is built from a :class:`~fieldtui.sim.context.SimContext` and keeps its own mutable
state (copied from the fleet at construction): ``POST /_sim/reset`` simply builds it again.
Time comes from ``ctx.now()`` only, so ``POST /_sim/clock`` can move it (token expiry, task
progress) without a test having to sleep.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from starlette.routing import BaseRoute

from fieldtui.sim.context import SimContext


class Cloud(Protocol):
    kind: ClassVar[str]  # "mysensor" | "things" | "devicehq" | "fleet"
    prefix: ClassVar[str]  # the URL path prefix it is mounted under

    def __init__(self, ctx: SimContext) -> None: ...

    def routes(self) -> list[BaseRoute]:
        """Routes with paths relative to ``prefix``."""
        ...

    def expire_credentials(self) -> None:
        """Invalidate every token or session now (a static API token is revoked until reset)."""
        ...

    def inspect(self, device_id: str) -> dict[str, Any] | None:
        """The cloud's own state of one device, for tests; None when it does not know it."""
        ...
