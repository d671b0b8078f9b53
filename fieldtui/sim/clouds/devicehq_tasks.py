"""DeviceHQ simulator: device tasks (document 002, "Account API Extensions for Task Management").

A task is "handled by the device on the next subsequent check-in": it is ``queued`` until the
device's first check-in after its creation, ``pending`` while the device works on it (one to
three more check-ins), then ``completed`` or ``failed``. ``cancelled`` is final. A gateway that
never checks in keeps its tasks queued. State is computed from the check-in schedule when
observed, so the clock alone moves tasks on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fieldtui.sim.clouds.devicehq_catalog import App, Catalog, family
from fieldtui.sim.clouds.devicehq_devices import DeviceState
from fieldtui.sim.clouds.devicehq_schedule import Schedule
from fieldtui.sim.clouds.devicehq_wire import DHQError, iso_offset, iso_z
from fieldtui.sim.fleet import SimDevice

TASK_TYPES = (
    "INSTALL_APP",
    "UNINSTALL_APP",
    "INSTALL_CONFIGS",
    "CONFIG_UPGRADE",
    "SOFTWARE_UPGRADE",
    "RADIO_FIRMWARE_UPGRADE",
)
FINAL_STATES = frozenset({"completed", "failed", "cancelled"})
#: "The total number of new, not completed tasks that can be created at one time per account".
TASK_LIMIT = 25
LIMIT_DETAIL = f"Cannot create new command because account is already at command limit ({TASK_LIMIT})."

_FAILURES = (
    (2, "Device reported: not enough free space to complete the task"),
    (5, "Device reported: download checksum mismatch"),
    (110, "Device reported: timed out waiting for the file server"),
)


@dataclass(slots=True)
class Task:
    id: str
    serial: str
    function: str
    created_at: float
    #: The type-specific attributes, as the create response shows them.
    attributes: dict[str, Any]
    #: What completion does to the device: (what, id, value).
    effect: tuple[str, str, str]
    checkins_needed: int
    failure: tuple[int, str] | None
    state: str = "queued"
    applied: bool = False

    def advance(self, schedule: Schedule | None) -> None:
        """Move the state on to what the device's check-ins so far have made of it."""
        if self.state in FINAL_STATES or schedule is None:
            return
        picked = schedule.k_after(self.created_at)
        if picked > schedule.last_k:
            return
        if picked + self.checkins_needed <= schedule.last_k:
            self.state = "failed" if self.failure else "completed"
        else:
            self.state = "pending"

    def resource(self, *, detail: bool = False) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "function": self.function,
            "created_at": iso_z(self.created_at),
            "state": self.state,
            **self.attributes,
        }
        if detail:
            # "detailed information about the type, status, return codes, etc".
            code: int | None = 0 if self.state == "completed" else None
            error: str | None = None
            if self.state == "failed" and self.failure is not None:
                code, error = self.failure
            attributes["return_code"] = code
            attributes["error"] = error
        return {"id": self.id, "type": "tasks", "attributes": attributes}

    def apply(self, state: DeviceState) -> None:
        """The effect on the device, once, when the task is first seen completed."""
        if self.applied or self.state != "completed":
            return
        self.applied = True
        what, ident, value = self.effect
        if what == "install_app":
            state.apps[ident] = value
            if value:
                state.app_configs[ident] = [c for c in self.attributes.get("config_ids", "").split(",") if c]
        elif what == "uninstall_app":
            state.apps.pop(ident, None)
            state.app_configs.pop(ident, None)
        elif what == "install_configs":
            state.app_configs[ident] = [c for c in value.split(",") if c]
        elif what == "firmware":
            state.firmware = value
        elif what == "radio_firmware":
            state.radio_firmware = value
        elif what == "configuration":
            state.config_id = ident


def _string(attributes: dict[str, Any], name: str, function: str) -> str:
    value = attributes.get(name)
    if value is None or value == "":
        raise DHQError(f"{name} is required for {function} tasks")
    if not isinstance(value, str):
        raise DHQError(f"{name} must be a string")
    return value


def _config_ids(attributes: dict[str, Any], *, required: bool, function: str) -> list[str]:
    raw = attributes.get("config_ids")
    if raw is None or raw == [] or raw == "":
        if required:
            raise DHQError(f"config_ids is required for {function} tasks")
        return []
    if isinstance(raw, str):  # the responses spell it as a comma-separated string; accept that too
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise DHQError("config_ids must be an array of app config ids")
    return list(raw)


def _app(catalog: Catalog, app_id: str) -> App:
    app = catalog.apps.get(app_id)
    if app is None:
        raise DHQError(f"App {app_id} not found in this account: see GET /api/v2/apps")
    return app


def _app_block(app: App, version: str, config_ids: str | None) -> dict[str, Any]:
    return {"name": app.name, "version": version, "config_ids": config_ids, "id": app.id}


def build_task(
    body_attributes: dict[str, Any], device: SimDevice, state: DeviceState, catalog: Catalog, now: float
) -> tuple[str, dict[str, Any], tuple[str, str, str]]:
    """Validate a create request: the function, the response attributes and the effect."""
    function = body_attributes.get("type")
    if function not in TASK_TYPES:
        raise DHQError(f"Unknown task type {function!r}: expected one of {', '.join(TASK_TYPES)}")
    attrs: dict[str, Any] = {}
    if function == "INSTALL_APP":
        app = _app(catalog, _string(body_attributes, "app_id", function))
        version = body_attributes.get("version")
        if version is not None and (not isinstance(version, str) or app.version(version) is None):
            available = ", ".join(v.version for v in app.versions)
            raise DHQError(f"App {app.name} has no version {version!r} (available: {available})")
        ids = _config_ids(body_attributes, required=False, function=function)
        known = {c.id for c in app.configs}
        for config_id in ids:
            if config_id not in known:
                raise DHQError(f"App config {config_id} not found for app {app.name} ({app.id})")
        joined = ",".join(ids)
        attrs["app_id"] = app.id
        if ids:
            attrs["config_ids"] = joined
        attrs["app"] = _app_block(app, version or app.latest, joined)
        if version is not None:
            attrs["version"] = version
        return function, attrs, ("install_app", app.id, version or app.latest)
    if function == "UNINSTALL_APP":
        app = _app(catalog, _string(body_attributes, "app_id", function))
        attrs["app_id"] = app.id
        attrs["app"] = _app_block(app, state.apps.get(app.id, app.latest), None)
        return function, attrs, ("uninstall_app", app.id, "")
    if function == "INSTALL_CONFIGS":
        ids = _config_ids(body_attributes, required=True, function=function)
        owner = catalog.app_of_config(ids[0])
        if owner is None:
            raise DHQError(f"App config {ids[0]} not found in this account: see GET /api/v2/apps/:id")
        by_id = {c.id: c for c in owner.configs}
        for config_id in ids[1:]:
            if config_id not in by_id:
                raise DHQError(f"App config {config_id} does not belong to app {owner.name} ({owner.id})")
        joined = ",".join(ids)
        attrs["app_id"] = owner.id
        attrs["config_ids"] = joined
        attrs["app"] = _app_block(owner, "*", joined)
        attrs["app_configs"] = [
            {
                "id": c,
                "description": by_id[c].description,
                "install_requested_at": iso_offset(now),
                "version": by_id[c].version,
            }
            for c in ids
        ]
        attrs["version"] = "*"
        return function, attrs, ("install_configs", owner.id, joined)
    if function == "CONFIG_UPGRADE":
        config_id = _string(body_attributes, "config_file_id", function)
        config = catalog.configurations.get(config_id)
        if config is None:
            raise DHQError(
                f"Device configuration {config_id} not found: see GET /api/v2/device-configurations"
            )
        if family(config.model) != family(device.model):
            raise DHQError(
                f"Device configuration {config.name} is for {config.model}; device {device.id} "
                f"is a {device.model}"
            )
        attrs["config_file_id"] = config.id
        return function, attrs, ("configuration", config.id, config.name)
    firmware_id = _string(body_attributes, "firmware_id", function)
    radio = function == "RADIO_FIRMWARE_UPGRADE"
    firmware = (catalog.radio_firmwares if radio else catalog.device_firmwares).get(firmware_id)
    if firmware is None:
        route = "radio-firmwares" if radio else "device-firmwares"
        raise DHQError(
            f"{'Radio' if radio else 'Device'} firmware {firmware_id} not found: see GET /api/v2/{route}"
        )
    if firmware.model != family(device.model):
        raise DHQError(
            f"Firmware {firmware.version} is for {firmware.model} devices; device {device.id} "
            f"is a {device.model}"
        )
    attrs["firmware_id"] = firmware.id
    attrs["version"] = firmware.version
    return function, attrs, ("radio_firmware" if radio else "firmware", firmware.id, firmware.version)


def failure_for(roll: float, pick: int) -> tuple[int, str] | None:
    """About one task in ten fails, with a device-reported reason."""
    return _FAILURES[pick % len(_FAILURES)] if roll < 0.1 else None
