"""What each backend can do, so the UI offers only what a device's clouds support."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class TelemetryMode(StrEnum):
    NONE = "none"
    PUSH = "push"
    POLL = "poll"


class Capabilities(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lookup: bool = True
    search: bool = False
    telemetry: TelemetryMode = TelemetryMode.NONE
    installation_status: bool = False
    groups: bool = False
    tasks: bool = False
    commands: bool = False
    alerts: bool = False
    device_update: bool = False
    #: Create (or register) and delete device records.
    device_lifecycle: bool = False
    #: Set a cloud setting of a device (MQTT "Set Cloud Settings").
    cloud_settings: bool = False

    def why_not(self, capability: str, backend_kind: str) -> str | None:
        """Say why ``capability`` is absent, or None when it is supported."""
        value = getattr(self, capability)
        supported = value is not TelemetryMode.NONE if capability == "telemetry" else bool(value)
        if supported:
            return None
        label = capability.replace("_", " ")
        return f"the {backend_kind} API has no {label}"
