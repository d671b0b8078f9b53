"""Each fake cloud's state, set by the test (``set_state``) and announced to listeners at once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from fieldtui.service.api import BackendState, BackendStatus, ConnectivityChange, Unsubscribe


class FakeConnectivity:
    """The port's connectivity: a snapshot, change listeners, and a probe that reports what the
    test set (no network, no prober running behind the test's back)."""

    def __init__(self, backends: Iterable[str], now: Callable[[], datetime], *, online: bool = True) -> None:
        self._now = now
        start = BackendState.ONLINE if online else BackendState.UNKNOWN
        self._status = {
            name: BackendStatus(
                backend=name,
                state=start,
                last_success=now() if online else None,
                changed_at=now() if online else None,
            )
            for name in backends
        }
        self._callbacks: list[Callable[[ConnectivityChange], None]] = []
        #: Backends probed through ``probe_now``, in order (what a test checks "probed at start" by).
        self.probed: list[str] = []

    def snapshot(self) -> dict[str, BackendStatus]:
        return dict(self._status)

    def state(self, backend: str) -> BackendState:
        return self._status[backend].state

    def reachable(self, backend: str) -> bool:
        """False when the test made the cloud offline (reads fail over to the cache, writes wait)."""
        return self._status[backend].state is not BackendState.OFFLINE

    def on_change(self, callback: Callable[[ConnectivityChange], None]) -> Unsubscribe:
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return unsubscribe

    async def probe_now(self, backend: str) -> BackendState:
        self.probed.append(backend)
        status = self._status[backend]
        if status.state is BackendState.UNKNOWN:
            self.set_state(backend, BackendState.ONLINE)
        return self._status[backend].state

    def set_state(self, backend: str, state: BackendState, error: str | None = None) -> None:
        """Put ``backend`` in ``state`` (with ``error`` as its last error), announcing a change."""
        old = self._status[backend]
        online = state is BackendState.ONLINE
        if online:
            error = None
        elif error is None:
            error = {
                BackendState.OFFLINE: "cannot connect (the fake cloud is offline)",
                BackendState.AUTH_ERROR: "credentials refused",
                BackendState.DEGRADED: "server error 503",
            }.get(state)
        changed = old.state is not state
        new = replace(
            old,
            state=state,
            last_error=error,
            last_success=self._now() if online else old.last_success,
            changed_at=self._now() if changed else old.changed_at,
        )
        self._status[backend] = new
        if changed:
            change = ConnectivityChange(backend=backend, old=old.state, new=state, status=new)
            for callback in list(self._callbacks):
                callback(change)
