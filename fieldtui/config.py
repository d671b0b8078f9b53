"""The TOML config file: profiles of backends, validated strictly.

Every error names the file, the key and what is allowed; nothing here prints a traceback.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fieldtui import paths
from fieldtui.core.errors import ConfigError
from fieldtui.core.models import BackendKind
from fieldtui.keymap import check_keymap
from fieldtui.logging_setup import redact

KINDS = ", ".join(kind.value for kind in BackendKind)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _BackendBase(_Strict):
    timeout: float = Field(default=10.0, gt=0, le=300)
    #: A PEM file of CA certificates; checked when the config is loaded (``_check_files``).
    ca_bundle: str | None = None
    poll_interval: float = Field(default=5.0, gt=0, le=3600)

    @field_validator("ca_bundle")
    @classmethod
    def _home(cls, value: str | None) -> str | None:
        # ``~/certs/site.pem`` as a shell would read it: TLS libraries take the path literally.
        return str(Path(value).expanduser()) if value else value


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
    #: How the secret is sent: ``bearer`` (the simulator; Memfault's organization auth tokens
    #: today) or ``basic`` (Memfault's HTTP Basic: ``username`` a user's email with their API
    #: key as the secret, or no username for an organization auth token).
    auth: Literal["bearer", "basic"] = "bearer"
    #: HTTP Basic cannot carry a colon in the user name (RFC 7617), nor spaces in an email.
    username: str = Field(default="", pattern=r"^[^:\s]*$")


class MqttBackend(_BackendBase):
    kind: Literal["mqtt"]
    host: str
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = False
    protocol: Literal[5, "5", "3.1.1"] = 5
    username: str | None = None
    client_id: str | None = None
    #: A TOML file of ``"DEVICE_ID" = "ACCESS_KEY"`` lines, one key per device (document 003:
    #: each device's own key from the Register Device API); must be private (0600).
    keys_file: str | None = None
    #: Look device keys up in the keyring too, as entries ``<profile>/<backend>/<device>``.
    keys_in_keyring: bool = False

    @field_validator("keys_file")
    @classmethod
    def _keys_home(cls, value: str | None) -> str | None:
        return str(Path(value).expanduser()) if value else value

    @property
    def protocol_version(self) -> str:
        return "3.1.1" if self.protocol == "3.1.1" else "5"


#: A keys file larger than this is not one (100,000 devices take about 6 MB).
_MAX_KEYS_FILE = 64 * 1024 * 1024


def read_keys_file(keys_file: str) -> dict[str, str]:
    """Device id -> access key from an MQTT backend's ``keys_file``; ConfigError naming the file
    and the fix when it is missing, readable by others, or not a table of strings."""
    where = Path(keys_file)
    fix = f"chmod 600 {keys_file}"
    try:
        # stat before open: opening a FIFO or a device named by mistake would block or worse.
        if not stat.S_ISREG(where.stat().st_mode):
            raise ConfigError(f"{keys_file}: the MQTT keys file is not a regular file")
        with where.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & 0o077:
                raise ConfigError(
                    f"{keys_file}: the MQTT keys file is readable by other users "
                    f"(mode {stat.S_IMODE(mode):04o}); access keys must stay private",
                    hint=f"run `{fix}`",
                )
            content = handle.read(_MAX_KEYS_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"{keys_file}: the MQTT keys file does not exist",
            hint='create it with one line per device, DEVICE_ID = "ACCESS_KEY" (mode 0600), or remove keys_file',
        ) from None
    except OSError as exc:
        raise ConfigError(f"{keys_file}: cannot read the MQTT keys file ({exc.strerror or exc})") from None
    if len(content) > _MAX_KEYS_FILE:
        raise ConfigError(f"{keys_file}: the MQTT keys file is larger than {_MAX_KEYS_FILE // 2**20} MB")
    try:
        raw = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{keys_file}: the MQTT keys file is not valid TOML: {exc}",
            hint='write one line per device: "DEVICE_ID" = "ACCESS_KEY"',
        ) from None
    bad = sorted(device for device, key in raw.items() if not isinstance(key, str) or not key.strip())
    if bad:
        shown = ", ".join(repr(device) for device in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise ConfigError(
            f"{keys_file}: every device in the MQTT keys file needs a non-empty string key; not: {shown}",
            hint='write one line per device: "DEVICE_ID" = "ACCESS_KEY"',
        )
    return {device: key.strip() for device, key in raw.items()}


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
    # The bad value is quoted, minus any credential a URL carries (the message may be pasted).
    return f"{path}: '{key}' {message[0].lower() + message[1:]} (got {redact(repr(error.get('input')))})"


#: Deeper than this is not a fieldtui config (one needs two or three levels): refused before
#: parsing, so a hostile or broken file cannot reach the parser's recursion limit.
MAX_NESTING = 32
#: Where brackets may open or close, strings start and comments begin.
_TOML_TOKEN = re.compile(r"\"\"\"|'''|[\"'#\[\]{}]")


def _string_end(text: str, start: int, quote: str) -> int:
    """The index just past the string opened before ``start`` with ``quote``."""
    escapes = quote.startswith('"')  # literal strings ('...') have no escapes
    pos = start
    while True:
        end = text.find(quote, pos)
        if end < 0:
            return len(text)  # unterminated: the parser reports it
        backslashes = 0
        while escapes and end - backslashes - 1 >= start and text[end - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return end + len(quote)
        pos = end + 1


def nesting_depth(text: str, limit: int = MAX_NESTING) -> int:
    """How deep arrays and inline tables nest in TOML ``text`` (strings and comments skipped).

    Counting stops once past ``limit``: a 5,000-deep array costs a scan, never a deep parse.
    """
    depth = deepest = 0
    pos = 0
    while (match := _TOML_TOKEN.search(text, pos)) is not None:
        token, pos = match.group(), match.end()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif token in "]}":
            depth = max(0, depth - 1)
        elif token == "#":
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline + 1
        else:
            pos = _string_end(text, pos, token)
    return deepest


_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
#: A CA bundle larger than this is not one (the system bundle is about 200 kB).
_MAX_BUNDLE = 16 * 1024 * 1024


def _bundle_problem(bundle: str) -> str | None:
    """Why ``bundle`` cannot be a CA bundle, or None when it holds a PEM certificate."""
    where = Path(bundle)
    if not where.exists():
        return "names a file that does not exist"
    if not where.is_file():
        return "names a directory or device, not a file"
    try:
        with where.open("rb") as handle:
            content = handle.read(_MAX_BUNDLE)
    except OSError as exc:
        return f"names a file that cannot be read ({exc.strerror or exc})"
    if _PEM_CERTIFICATE not in content:
        return "names a file with no PEM certificate in it (no '-----BEGIN CERTIFICATE-----' block)"
    return None


def _check_files(config: Config, path: Path) -> None:
    """Files the config names exist and are what they should be: said now, naming the key,
    rather than as a bare ``FileNotFoundError`` at the first connection."""
    problems = []
    for profile_name, profile in config.profiles.items():
        for backend_name, backend in profile.backends.items():
            if isinstance(backend, MqttBackend) and backend.keys_file is not None:
                try:
                    read_keys_file(backend.keys_file)
                except ConfigError as exc:
                    key = f"profiles.{profile_name}.backends.{backend_name}.keys_file"
                    raise ConfigError(f"{path}: '{key}': {exc.message}", hint=exc.hint) from None
            if backend.ca_bundle is None:
                continue
            problem = _bundle_problem(backend.ca_bundle)
            if problem is not None:
                key = f"profiles.{profile_name}.backends.{backend_name}.ca_bundle"
                problems.append(f"{path}: '{key}' {problem}: {backend.ca_bundle}")
    if problems:
        raise ConfigError(
            "\n".join(problems), hint="point ca_bundle at your CA's certificate file (PEM), or remove it"
        )


def parse_config(text: str, path: Path) -> Config:
    if nesting_depth(text) > MAX_NESTING:
        raise ConfigError(
            f"{path}: not a fieldtui config: arrays or tables nested more than {MAX_NESTING} levels deep"
        )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # the depth check above should make this unreachable
        raise ConfigError(f"{path}: not a fieldtui config: nested too deep to read") from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        messages = [_describe_error(path, err) for err in exc.errors()]
        raise ConfigError("\n".join(messages)) from None
    _check_files(config, path)
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
