"""Secrets from the environment, else the system keyring; never from the config file.

keyring is imported only when the environment does not hold the secret: it costs ~190 ms.
"""

from __future__ import annotations

import os
import re

from fieldtui.core.errors import SecretError

KEYRING_SERVICE = "fieldtui"


def env_var_name(profile: str, backend: str) -> str:
    """``FIELDTUI_SECRET_<PROFILE>_<BACKEND>``, upper-cased, non-alphanumerics made ``_``."""
    return "FIELDTUI_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{profile}_{backend}").upper()


def keyring_user(profile: str, backend: str) -> str:
    return f"{profile}/{backend}"


def _no_keyring(profile: str, backend: str) -> SecretError:
    """No keyring here (headless SSH): the error names both ways out."""
    return SecretError(
        "no usable system keyring on this machine (as over SSH without a desktop session)",
        backend=backend,
        hint=f"set {env_var_name(profile, backend)} in the environment, or `pip install keyrings.alt` "
        f"(a file-based keyring) and run `fieldtui login {backend}`",
    )


def keyring_backend_name() -> str:
    """The keyring backend in use, for `fieldtui info` (never prompts)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            return "none (no keyring backend available)"
        return f"{type(backend).__module__}.{type(backend).__name__}"
    except Exception as exc:  # noqa: BLE001 - info must never crash
        return f"unavailable ({exc})"


def _check_backend_is_safe() -> None:
    """Refuse keyrings that would prompt on the terminal (they wreck a running TUI)."""
    import keyring

    backend = keyring.get_keyring()
    name = type(backend).__name__
    if name == "EncryptedKeyring":
        raise SecretError(
            "the configured keyring (keyrings.alt EncryptedKeyring) would prompt for a password",
            hint="set PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring or use the "
            "environment variable instead",
        )


def get_secret(profile: str, backend: str) -> str | None:
    """The secret for one backend, or None when none is stored anywhere."""
    value = os.environ.get(env_var_name(profile, backend))
    if value:
        return value
    try:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError
    except Exception:  # noqa: BLE001 - a broken keyring install must not crash the app
        return None
    try:
        _check_backend_is_safe()
        return keyring.get_password(KEYRING_SERVICE, keyring_user(profile, backend))
    except NoKeyringError:
        return None
    except KeyringError as exc:
        raise SecretError(f"the keyring refused to read the secret: {exc}", backend=backend) from None


def require_secret(profile: str, backend: str) -> str:
    secret = get_secret(profile, backend)
    if secret is None:
        raise SecretError(
            "no secret stored",
            backend=backend,
            hint=f"set {env_var_name(profile, backend)} or run `fieldtui login {backend}`",
        )
    return secret


def require_keyring(profile: str, backend: str) -> None:
    """Raise SecretError, naming both ways out, when no keyring could store a secret here.

    Asked before prompting for the secret: a technician on a headless jump host must not type
    a secret only to hear that it cannot be kept.
    """
    try:
        import keyring
        from keyring.backends import fail
    except Exception as exc:  # noqa: BLE001 - a broken keyring install is "no keyring"
        raise SecretError(
            f"keyring cannot be imported: {exc}",
            backend=backend,
            hint=f"set {env_var_name(profile, backend)} in the environment instead",
        ) from None
    if isinstance(keyring.get_keyring(), fail.Keyring):
        raise _no_keyring(profile, backend)
    _check_backend_is_safe()


def store_secret(profile: str, backend: str, secret: str) -> None:
    try:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError
    except Exception as exc:  # noqa: BLE001
        raise SecretError(f"keyring cannot be imported: {exc}") from None
    try:
        _check_backend_is_safe()
        keyring.set_password(KEYRING_SERVICE, keyring_user(profile, backend), secret)
    except NoKeyringError:
        raise _no_keyring(profile, backend) from None
    except KeyringError as exc:
        raise SecretError(f"the keyring refused to store the secret: {exc}", backend=backend) from None
