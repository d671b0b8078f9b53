"""One error hierarchy for every backend. Each error carries what the technician needs to read."""

from __future__ import annotations


class FieldtuiError(Exception):
    """Base of every error fieldtui raises on purpose. ``str(err)`` is fit to show a user."""

    def __init__(self, message: str, *, backend: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.hint = hint

    def __str__(self) -> str:
        prefix = f"{self.backend}: " if self.backend else ""
        suffix = f" ({self.hint})" if self.hint else ""
        return f"{prefix}{self.message}{suffix}"


class ConfigError(FieldtuiError):
    """The config file or a command-line value is wrong: exit code 2."""


class SecretError(FieldtuiError):
    """A secret is missing or the keyring cannot be used."""


class BackendError(FieldtuiError):
    """Something went wrong talking to one backend."""

    #: True when trying again later may succeed (the outbox retries these with backoff).
    transient: bool = False


class ConnectionError_(BackendError):  # noqa: N801 - avoids shadowing the builtin
    """The backend could not be reached (refused, reset, DNS, TLS)."""

    transient = True


class TimeoutError_(ConnectionError_):  # noqa: N801 - avoids shadowing the builtin
    """The backend did not answer in time."""


class AuthError(BackendError):
    """Credentials were refused, or a session/token could not be (re)established."""


class SessionLost(AuthError):
    """The server closed our session (DeviceHQ: another client took it). Retrying may work."""

    transient = True


class NotFound(BackendError):
    """The backend does not know the device, task or group asked for."""


class Rejected(BackendError):
    """The server understood the request and refused it; ``message`` holds its own words."""

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        hint: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, backend=backend, hint=hint)
        self.status_code = status_code


class ServerError(BackendError):
    """5xx or 429: the server is in trouble or busy. Transient."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        hint: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, backend=backend, hint=hint)
        self.status_code = status_code


class InvalidResponse(BackendError):
    """The body was not JSON, or not the documented shape. Names the route."""

    def __init__(self, message: str, *, backend: str | None = None, route: str | None = None) -> None:
        super().__init__(message if route is None else f"{message} (from {route})", backend=backend)
        self.route = route


class LimitReached(Rejected):
    """A documented quota (DeviceHQ: 25 unfinished tasks per account). Held, not failed."""

    transient = True


class Unsupported(FieldtuiError):
    """The backend does not offer this operation; ``message`` says why."""


class DeviceNotFound(FieldtuiError):
    """No configured backend knows the device: exit code 3."""


class NoBackendReachable(FieldtuiError):
    """Every backend is unreachable and nothing is cached: exit code 4."""
