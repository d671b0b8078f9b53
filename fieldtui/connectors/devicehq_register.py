"""DeviceHQ (document 002) device records: register and delete.

``POST /devices/register {serial, uuid}`` "associates the device with your account" (the uuid:
"exactly 32 hexadecimal characters", whitespace and other non-alphanumerics stripped, any
case); ``DELETE /devices/(serial or uuid)`` "removes a device and all associated records" (a
device that checks in again is recreated). The document shows the register body as bare
``{serial, uuid}``; that is what is sent. Its sample answer is a JSON:API device resource
(``{"id", "type": "devices", "attributes": {...}}``), read with or without a ``data`` envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fieldtui.core.errors import Rejected
from fieldtui.core.ids import devicehq_uuid
from fieldtui.core.models import Device

#: What "register" takes beside the serial.
REGISTER_FIELDS = ("uuid",)


def register_body(device_id: str, fields: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """The register request's body, or Rejected with what is wrong (before anything is sent)."""
    unknown = sorted(set(fields) - set(REGISTER_FIELDS))
    if unknown:
        raise Rejected(f"registering takes only a uuid, not {', '.join(unknown)}", backend=backend)
    uuid = devicehq_uuid(str(fields.get("uuid") or ""))
    if uuid is None:
        raise Rejected(
            "registering needs the device's uuid: exactly 32 hexadecimal characters "
            "(dashes and spaces are ignored)",
            backend=backend,
        )
    return {"serial": device_id.strip(), "uuid": uuid}


def device_uuid(device: Device) -> str | None:
    """The uuid the device record shows (``attributes.uuid``), cleaned as the server cleans it."""
    data = device.raw.get("data")
    item = data if isinstance(data, Mapping) else device.raw
    attributes = item.get("attributes")
    value = attributes.get("uuid") if isinstance(attributes, Mapping) else None
    return devicehq_uuid(value) if isinstance(value, str) else None


def registered_as_asked(device: Device, fields: Mapping[str, Any]) -> bool:
    """A device found after a register whose answer was lost is ours when its uuid is the one
    asked for (a record that shows no uuid is taken as ours: the serial matched)."""
    shown = device_uuid(device)
    asked = devicehq_uuid(str(fields.get("uuid") or ""))
    return shown is None or asked is None or shown == asked
