"""The TOML config file: profiles of backends, validated strictly.

Every error names the file, the key and what is allowed; nothing here prints a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fieldtui import paths
from fieldtui.core.errors import ConfigError
from fieldtui.core.models import BackendKind
from fieldtui.keymap import check_keymap

KINDS = ", ".join(kind.value for kind in BackendKind)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _BackendBase(_Strict):
    timeout: float = Field(default=10.0, gt=0, le=300)
    ca_bundle: str | None = None
    poll_interval: float = Field(default=5.0, gt=0, le=3600)


class _RestBackend(_BackendBase):
    url: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class MySensorBackend(_RestBackend):
    kind: Literal["mysensor"]


class ThingsBackend(_RestBackend):
    kind: Literal["things"]
    client_id: str


class DeviceHQBackend(_RestBackend):
    kind: Literal["devicehq"]


class FleetBackend(_RestBackend):
    kind: Literal["fleet"]


class MqttBackend(_BackendBase):
    kind: Literal["mqtt"]
    host: str
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = False
    protocol: Literal[5, "5", "3.1.1"] = 5
    username: str | None = None
    client_id: str | None = None

    @property
    def protocol_version(self) -> str:
        return "3.1.1" if self.protocol == "3.1.1" else "5"


BackendConfig = Annotated[
    MySensorBackend | ThingsBackend | DeviceHQBackend | FleetBackend | MqttBackend,
    Field(discriminator="kind"),
]


class Profile(_Strict):
    backends: dict[str, BackendConfig] = Field(default_factory=dict)


class Config(_Strict):
    default_profile: str | None = None
    profiles: dict[str, Profile] = Field(default_factory=dict)
    #: Binding id -> comma-separated keys (Textual keymap), e.g. ``"sync_now" = "ctrl+s"``.
    keymap: dict[str, str] = Field(default_factory=dict)


class LoadedConfig(BaseModel):
    """A validated config with the profile chosen for this run."""

    model_config = ConfigDict(frozen=True)

    path: Path
    config: Config
    profile_name: str

    @property
    def profile(self) -> Profile:
        return self.config.profiles[self.profile_name]

    @property
    def backends(self) -> Mapping[str, BackendConfig]:
        return self.profile.backends


def resolve_config_path(cli_value: str | None) -> Path:
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get("FIELDTUI_CONFIG")
    if env:
        return Path(env).expanduser()
    return paths.config_path()


def _describe_error(path: Path, error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    # Drop pydantic's discriminator tags ("mysensor", "function-after[...]") from the key path.
    key_parts = [p for p in loc if p not in {k.value for k in BackendKind} or p == loc[-1]]
    kind = error.get("type", "")
    key = ".".join(key_parts) if key_parts else "(top level)"
    if kind == "extra_forbidden":
        return f"{path}: unknown key '{key}'"
    if kind == "missing":
        return f"{path}: missing required key '{key}'"
    if kind == "union_tag_invalid":
        return f"{path}: '{key}.kind' is not a known backend kind; allowed: {KINDS}"
    if kind == "union_tag_not_found":
        return f"{path}: '{key}' has no 'kind'; allowed kinds: {KINDS}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{path}: '{key}' has a bad value {error.get('input')!r}; allowed: {expected}"
    message = str(error.get("msg", "invalid value"))
    return f"{path}: '{key}' {message[0].lower() + message[1:]} (got {error.get('input')!r})"


def parse_config(text: str, path: Path) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        messages = [_describe_error(path, err) for err in exc.errors()]
        raise ConfigError("\n".join(messages)) from None
    check_keymap(config.keymap, path)
    return config


def load_config(cli_path: str | None = None, cli_profile: str | None = None) -> LoadedConfig:
    path = resolve_config_path(cli_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found",
            hint="create it (see README.md), or pass --config PATH or set FIELDTUI_CONFIG; "
            "`fieldtui demo` needs none",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    config = parse_config(text, path)
    profile = cli_profile or os.environ.get("FIELDTUI_PROFILE") or config.default_profile
    if profile is None:
        if len(config.profiles) == 1:
            profile = next(iter(config.profiles))
        else:
            names = ", ".join(sorted(config.profiles)) or "none defined"
            raise ConfigError(
                f"{path}: no profile chosen; set 'default_profile' or pass --profile (profiles: {names})"
            )
    if profile not in config.profiles:
        names = ", ".join(sorted(config.profiles)) or "none defined"
        raise ConfigError(f"{path}: profile '{profile}' is not defined; allowed: {names}")
    return LoadedConfig(path=path, config=config, profile_name=profile)
