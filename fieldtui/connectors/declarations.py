"""What each cloud declares for the app to render: task kinds, commands, group rules, catalogues.

Vendor knowledge lives here, beside the connectors, and nowhere in the UI: the task types
DeviceHQ (002) and mysensor (000) take and where their attributes come from, the commands
things (001: message ids with an event id) and MQTT devices (003) accept, and how each cloud
names its groups (001's reserved ``unassigned``; DeviceHQ's free-text group on each device).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fieldtui.connectors.base import Connector
from fieldtui.core.catalogue import CatalogueItem, CommandKind, GroupRules, TaskKind
from fieldtui.core.errors import Unsupported
from fieldtui.core.models import BackendKind


@dataclass(frozen=True, slots=True)
class Declarations:
    task_kinds: tuple[TaskKind, ...] = ()
    command_kinds: tuple[CommandKind, ...] = ()
    group_rules: GroupRules | None = None


DEVICEHQ_TASK_KINDS: tuple[TaskKind, ...] = (
    TaskKind("Device firmware", "SOFTWARE_UPGRADE", "device_firmwares", "firmware_id"),
    TaskKind("Radio firmware", "RADIO_FIRMWARE_UPGRADE", "radio_firmwares", "firmware_id"),
    TaskKind("Device configuration", "CONFIG_UPGRADE", "device_configurations", "config_file_id"),
    TaskKind("Install app", "INSTALL_APP", "apps", "app_id", ("version", "configs?")),
    TaskKind("App configurations", "INSTALL_CONFIGS", "apps", "app_id", ("configs",)),
    TaskKind("Uninstall app", "UNINSTALL_APP", "device_apps", "app_id"),
)

MYSENSOR_TASK_KINDS: tuple[TaskKind, ...] = (
    TaskKind("Firmware update", "update_firmware", "", "file_id"),
    TaskKind("Configuration update", "update_configuration", "", "file_id"),
)

#: Document 001: commands are message ids, each with an event id (``tsmEv``).
THINGS_COMMANDS: tuple[CommandKind, ...] = (
    CommandKind("1500", "message 1500", ("tsmEv",)),
    CommandKind("1501", "message 1501", ("tsmEv",)),
    CommandKind("12200", "message 12200", ("tsmEv",)),
    CommandKind("13200", "message 13200", ("tsmEv",)),
)

#: Document 003 names ``update_firmware`` (url, version); the others are what field devices
#: commonly take and what the simulated devices answer.
MQTT_COMMANDS: tuple[CommandKind, ...] = (
    CommandKind("reboot", "reboot the device"),
    CommandKind("identify", "blink / beep to find it"),
    CommandKind("update_firmware", "update firmware", ("url", "version")),
    CommandKind("set_config", "set configuration fields"),
)

_DECLARED: dict[BackendKind, Declarations] = {
    BackendKind.DEVICEHQ: Declarations(
        task_kinds=DEVICEHQ_TASK_KINDS,
        group_rules=GroupRules(
            management_refused=(
                "DeviceHQ groups are free text on each device: moving a device to a new name creates it"
            )
        ),
    ),
    BackendKind.MYSENSOR: Declarations(task_kinds=MYSENSOR_TASK_KINDS),
    BackendKind.THINGS: Declarations(
        command_kinds=THINGS_COMMANDS,
        group_rules=GroupRules(reserved="unassigned", reserved_label="unassigned (take out of its group)"),
    ),
    BackendKind.MQTT: Declarations(command_kinds=MQTT_COMMANDS),
    BackendKind.FLEET: Declarations(group_rules=GroupRules()),
}


#: A device update's fields in each cloud's own words that are a device view field under
#: another name: DeviceHQ's description is the device's name (the document's "description";
#: the connector shows it as the name), a fleet cohort's slug is the device's group.
_VIEW_FIELDS: dict[BackendKind, dict[str, str]] = {
    BackendKind.DEVICEHQ: {"description": "name"},
    BackendKind.FLEET: {"cohort": "group"},
}


def view_field_names(kind: BackendKind) -> dict[str, str]:
    """``kind``'s update fields that the device view calls by another name (cloud -> view)."""
    return dict(_VIEW_FIELDS.get(kind, {}))


def declared(connector: Connector) -> Declarations:
    """What ``connector``'s cloud declares (only what its capabilities allow)."""
    found = _DECLARED.get(connector.kind, Declarations())
    caps = connector.capabilities
    return Declarations(
        task_kinds=found.task_kinds if caps.tasks else (),
        command_kinds=found.command_kinds if caps.commands else (),
        group_rules=(found.group_rules or GroupRules()) if caps.groups else None,
    )


def _words(*parts: object) -> str:
    seen: list[str] = []
    for part in parts:
        text = str(part).strip() if part not in (None, "") else ""
        if text and text not in seen:
            seen.append(text)
    return " · ".join(seen)


def _item(raw: Any) -> CatalogueItem:
    """A DeviceHQ catalogue entry (firmware, configuration, app, installed app) as an item."""
    label = _words(
        getattr(raw, "name", None),
        getattr(raw, "version", None),
        getattr(raw, "model", None),
        getattr(raw, "sub_type", None),
        getattr(raw, "radio_module", None),
        getattr(raw, "platform", None),
        getattr(raw, "status", None),
    ) or _words(getattr(raw, "description", None))
    versions = tuple(
        CatalogueItem(id=str(v.version), label=_words(v.version, v.description, v.status))
        for v in getattr(raw, "versions", None) or ()
        if getattr(v, "version", None)
    )
    configs = tuple(
        CatalogueItem(id=str(c.id), label=_words(c.version, c.description) or str(c.id))
        for c in getattr(raw, "app_configs", None) or ()
        if getattr(c, "id", None)
    )
    model = getattr(raw, "model", None)
    return CatalogueItem(
        id=str(getattr(raw, "id", "") or ""),
        label=label or str(getattr(raw, "id", "")),
        model=str(model) if model else None,
        versions=versions,
        configs=configs,
    )


def _sources(connector: Connector, device_id: str | None) -> dict[str, Callable[[], Awaitable[Any]]]:
    sources: dict[str, Callable[[], Awaitable[Any]]] = {}
    for name in ("device_firmwares", "radio_firmwares", "device_configurations", "apps"):
        method = getattr(connector, name, None)
        if method is not None:
            sources[name] = method
    device_apps = getattr(connector, "device_apps", None)
    if device_apps is not None and device_id is not None:
        sources["device_apps"] = lambda: device_apps(device_id)
    return sources


def model_family(model: object) -> str:
    """DeviceHQ's model family: the product name up to its first dash (``MTR-G3`` -> ``mtr``)."""
    return str(model or "").strip().split("-", 1)[0].lower()


def made_for(item: CatalogueItem, device_model: str) -> bool:
    """A firmware or configuration is made for a device of the same family (or for any model)."""
    return not item.model or model_family(item.model) == model_family(device_model)


async def catalogue(connector: Connector, source: str, args: Sequence[str]) -> list[CatalogueItem]:
    """One of the cloud's own lists: ``source`` is a :class:`TaskKind`'s ``source``; ``args``
    the device (for ``device_apps``), the app id (``app``: one app with its versions and
    configurations), or for the other lists the device's model (only what is made for its
    family, or for any model, is listed)."""
    if connector.kind is not BackendKind.DEVICEHQ:
        raise Unsupported(f"the {connector.kind.value} API has no {source.replace('_', ' ')} list")
    if source == "app":
        app = getattr(connector, "app", None)
        if app is None or not args:
            raise Unsupported("an app's details need the app id")
        return [_item(await app(args[0]))]
    method = _sources(connector, args[0] if args else None).get(source)
    if method is None:
        raise Unsupported(f"the devicehq API has no {source.replace('_', ' ')} list")
    result = await method()
    items = result if isinstance(result, list | tuple) else [result]
    found = [_item(raw) for raw in items if getattr(raw, "id", None)]
    if source != "device_apps" and args and args[0]:
        found = [item for item in found if made_for(item, args[0])]
    return found
