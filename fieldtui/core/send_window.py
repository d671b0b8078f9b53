"""The window in which a change request may still leave this process.

The outbox engine confirms its lease on an action right before sending it. A process stopped
(SIGSTOP, Ctrl-Z, a suspended laptop) between that confirmation and the moment the request's
bytes leave may wake after another process took the action over and sent it: its own request
would then apply the change twice. No cloud here takes a fencing token, so the last line of
defence is in the transport itself: the engine opens a window (``send_window``) that closes a
fraction of the lease after the confirmation, and every connector's transport calls
``check_send_window()`` right before it writes a request (the HTTP transport for the REST
clouds, the MQTT link's publish). A request met after the window closed is not sent:
``SendWindowClosed`` is raised instead, and the engine gives the action back to be checked.

Outside the engine (reads, the CLI's own requests) no window is open and nothing is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CLOSES_AT: ContextVar[float | None] = ContextVar("fieldtui_send_window", default=None)


class SendWindowClosed(Exception):
    """A change request met after its lease window closed: it was not sent.

    Deliberately not a ``FieldtuiError``: connectors must let it through untouched, never map
    it to a backend error (nothing reached the backend)."""


@contextmanager
def send_window(closes_at: float) -> Iterator[None]:
    """Requests made inside this block (and the tasks it starts) leave only before
    ``closes_at`` (``time.time()``: wall time keeps running while a laptop sleeps)."""
    token = _CLOSES_AT.set(closes_at)
    try:
        yield
    finally:
        _CLOSES_AT.reset(token)


def check_send_window() -> None:
    """Raise ``SendWindowClosed`` when a window is open and has closed; else return."""
    closes_at = _CLOSES_AT.get()
    if closes_at is not None and time.time() > closes_at:
        late = time.time() - closes_at
        raise SendWindowClosed(f"the lease window closed {late:.1f} s before the request could leave")
