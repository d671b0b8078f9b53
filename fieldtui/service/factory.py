"""Build a FleetService for the chosen profile: one connector per configured backend.

Connectors are built on first use, so a command that asks one cloud imports one connector
module and reads one secret (and so never imports keyring when the environment holds it).
"""

from __future__ import annotations

from fieldtui.config import BackendConfig, LoadedConfig
from fieldtui.connectors.base import Connector
from fieldtui.connectors.registry import build_connector
from fieldtui.core.models import BackendKind
from fieldtui.secrets import env_var_name, get_secret
from fieldtui.service.fleet import ConnectorSpec, FleetService
from fieldtui.service.ports import ReadCache


def connector_spec(profile: str, name: str, config: BackendConfig) -> ConnectorSpec:
    """How to build backend ``name``'s connector with its secret (env, else keyring), when needed."""

    def build() -> Connector:
        return build_connector(name, config, get_secret(profile, name), profile=profile)

    fix = f"set {env_var_name(profile, name)} or run `fieldtui login {name}`"
    return ConnectorSpec(BackendKind(config.kind), build, secret_fix=fix)


def build_fleet_service(
    loaded: LoadedConfig,
    *,
    cache: ReadCache | None = None,
    offline: bool = False,
    per_backend_timeout: float | None = None,
) -> FleetService:
    """A FleetService over every backend of ``loaded``'s profile (use it as ``async with``).

    Each backend is bounded by ``per_backend_timeout``, by default a little more than the
    longest configured HTTP timeout so a connector's own timeout is what usually fires.
    """
    specs = {
        name: connector_spec(loaded.profile_name, name, config) for name, config in loaded.backends.items()
    }
    if per_backend_timeout is None:
        per_backend_timeout = max((config.timeout for config in loaded.backends.values()), default=10.0) + 2.0
    return FleetService(specs, cache=cache, offline=offline, per_backend_timeout=per_backend_timeout)
