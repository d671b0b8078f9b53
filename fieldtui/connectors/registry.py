"""Build the connector for one configured backend (connector modules imported lazily)."""

from __future__ import annotations

import importlib

from fieldtui.config import BackendConfig
from fieldtui.connectors.base import Connector

#: kind -> (module, class). Imported on demand: a quick command pays only for what it uses.
CONNECTOR_CLASSES: dict[str, tuple[str, str]] = {
    "mysensor": ("fieldtui.connectors.mysensor", "MySensorConnector"),
    "things": ("fieldtui.connectors.things", "ThingsConnector"),
    "devicehq": ("fieldtui.connectors.devicehq", "DeviceHQConnector"),
    "mqtt": ("fieldtui.connectors.mqtt", "MqttConnector"),
    "fleet": ("fieldtui.connectors.fleet", "FleetConnector"),
}


def build_connector(
    name: str, config: BackendConfig, secret: str | None, *, profile: str | None = None
) -> Connector:
    """A connector for backend ``name``. Every connector takes ``(name, config, secret)``; the
    MQTT one also the profile, which names its per-device keyring entries."""
    module_name, class_name = CONNECTOR_CLASSES[config.kind]
    cls: type[Connector] = getattr(importlib.import_module(module_name), class_name)
    if config.kind == "mqtt":
        return cls(name, config, secret, profile=profile)  # type: ignore[call-arg]
    return cls(name, config, secret)  # type: ignore[call-arg]
