"""``fieldtui info`` (paths, keyring, backends; never a secret) and ``fieldtui login BACKEND``."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from fieldtui import paths
from fieldtui.config import LoadedConfig, MqttBackend, load_config, resolve_config_path
from fieldtui.core.errors import ConfigError
from fieldtui.core.text import strip_controls
from fieldtui.logging_setup import redact
from fieldtui.secrets import env_var_name, keyring_backend_name, require_keyring, store_secret


def run(args: argparse.Namespace) -> int:
    if args.command == "login":
        return _login(args)
    return _info(args)


def _backend_rows(loaded: LoadedConfig) -> list[dict[str, Any]]:
    rows = []
    for name, backend in loaded.backends.items():
        where = (
            f"{'mqtts' if backend.tls else 'mqtt'}://{backend.host}:{backend.port}"
            if isinstance(backend, MqttBackend)
            else backend.url
        )
        rows.append(
            {
                "name": name,
                "kind": backend.kind,
                # A URL may carry a credential (``https://user:pass@host``, ``?api_key=...``):
                # info is pasted into tickets and chats, so it never shows one.
                "url": redact(where),
                "secret_env": env_var_name(loaded.profile_name, name),
            }
        )
    return rows


def _shown(value: object) -> str:
    """A config-derived value for the terminal: no escapes, no bidi overrides, no credentials."""
    return redact(strip_controls(value))


def _info(args: argparse.Namespace) -> int:
    from fieldtui import __version__

    config_file = resolve_config_path(args.config)
    loaded: LoadedConfig | None = None
    config_problem: str | None = None
    if config_file.exists():
        try:
            loaded = load_config(args.config, args.profile)
        except ConfigError as exc:
            # The message may quote a bad value, URL and all.
            config_problem = redact(str(exc))
    else:
        config_problem = "not found (fieldtui demo needs none)"
    info: dict[str, Any] = {
        "version": __version__,
        "config_file": str(config_file),
        "config_problem": config_problem,
        "profile": loaded.profile_name if loaded else None,
        "data_dir": str(paths.data_dir()),
        "outbox": str(paths.outbox_path()),
        "log_dir": str(paths.log_dir()),
        "keyring_backend": keyring_backend_name(),
        "backends": _backend_rows(loaded) if loaded else [],
    }
    if args.json:
        # Imported here: the human output (the common case) does not pay for it.
        from fieldtui.commands._output import dumps

        print(dumps(info, indent=2))
        return 0
    print(f"fieldtui {_shown(info['version'])}")
    print(
        f"config file   {_shown(info['config_file'])}"
        + (f"  ({_shown(config_problem)})" if config_problem else "")
    )
    print(f"profile       {_shown(info['profile'] or '-')}")
    print(f"data dir      {_shown(info['data_dir'])}")
    print(f"outbox        {_shown(info['outbox'])}")
    print(f"log dir       {_shown(info['log_dir'])}")
    print(f"keyring       {_shown(info['keyring_backend'])}")
    if info["backends"]:
        print("backends")
        for row in info["backends"]:
            print(f"  {_shown(row['name']):<12} {_shown(row['kind']):<9} {_shown(row['url'])}")
    return 2 if config_problem and config_file.exists() else 0


def _login(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    if args.backend not in loaded.backends:
        names = ", ".join(sorted(loaded.backends)) or "none configured"
        raise ConfigError(
            f"{loaded.path}: no backend '{args.backend}' in profile '{loaded.profile_name}'; allowed: {names}"
        )
    # Before the prompt: with no keyring to keep it, typing the secret would be for nothing.
    require_keyring(loaded.profile_name, args.backend)
    if not sys.stdin.isatty():
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = getpass.getpass(f"Secret for {loaded.profile_name}/{args.backend} (not echoed): ")
    if not secret:
        raise ConfigError("nothing entered; nothing stored", backend=args.backend)
    # A keyring that refuses is a SecretError: `fieldtui.cli` says so (exit 2, never 1).
    store_secret(loaded.profile_name, args.backend, secret)
    print(f"Stored the secret for {loaded.profile_name}/{args.backend} in the system keyring.")
    return 0
