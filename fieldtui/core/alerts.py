"""What is alerting now: a device with its active alert words, and a cloud's own alerting list."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AlertingDevice(BaseModel):
    """One device alerting now on one cloud, with the alerts in the cloud's own words."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    device: str
    alerts: tuple[str, ...] = ()
    name: str | None = None
    online: bool | None = None


class CloudAlerts(BaseModel):
    """A cloud's own answer to "what is alerting": its devices and, where it says, its count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    devices: tuple[AlertingDevice, ...] = ()
    #: The count the cloud gives (things' ``alert_count``), None when it gives none.
    count: int | None = None
    #: Devices on the cloud's list whose alerts could not be read in the time allowed.
    unread: int = 0
