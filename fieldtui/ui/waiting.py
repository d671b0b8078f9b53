"""Screens opened before the service is up (a key pressed in the first second) load once it is."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

#: What such a screen says meanwhile: it loads by itself, nothing to press.
CONNECTING = "Still connecting to the clouds…"


@runtime_checkable
class WaitsForService(Protocol):
    """A screen that showed ``CONNECTING`` instead of its content."""

    def service_arrived(self) -> None:
        """The service is up: load what the screen shows."""
