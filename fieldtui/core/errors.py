"""One error hierarchy for every backend. Each error carries what the technician needs to read."""

from __future__ import annotations


class FieldtuiError(Exception):
    """Base of every error fieldtui raises on purpose. ``str(err)`` is fit to show a user.

    Every error reads the same way in the app and the CLI: ``<cloud>: <what happened> (<what
    to do>)``, the cloud named once. An error built from another one's text (a wrapper that
    re-raises ``str(exc)`` for the same backend) does not name the cloud twice.
    """

    #: A stable word for scripts (``--json`` errors carry it as ``code``).
    code = "error"

    def __init__(self, message: str, *, backend: str | None = None, hint: str | None = None) -> None:
        if backend:
            prefix = f"{backend}: "
            while message.startswith(prefix):
                message = message[len(prefix) :]
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.hint = hint

    @property
    def reason(self) -> str:
        """What happened and what to do, without the cloud (for a place that names it already)."""
        return f"{self.message} ({self.hint})" if self.hint else self.message

    @property
    def headline(self) -> str:
        """The cloud and what happened, without the hint."""
        return f"{self.backend}: {self.message}" if self.backend else self.message

    def __str__(self) -> str:
        return f"{self.backend}: {self.reason}" if self.backend else self.reason

    def to_json(self) -> dict[str, str | None]:
        """``{"code", "message", "hint", "backend"}``: the error as a script reads it."""
        return {"code": self.code, "message": self.headline, "hint": self.hint, "backend": self.backend}


class ConfigError(FieldtuiError):
    """The config file or a command-line value is wrong: exit code 2."""

    code = "config"


class InvalidId(FieldtuiError):
    """A typed or scanned id cannot name a device, group or task (a path, a control character,
    inner whitespace...): refused before it is queued, cached or sent. Exit code 2."""

    code = "invalid_id"


class SecretError(FieldtuiError):
    """A secret is missing or the keyring cannot be used."""

    code = "secret"


class BackendError(FieldtuiError):
    """Something went wrong talking to one backend."""

    code = "backend"

    #: True when trying again later may succeed (the outbox retries these with backoff).
    transient: bool = False


class ConnectionError_(BackendError):  # noqa: N801 - avoids shadowing the builtin
    """The backend could not be reached (refused, reset, DNS, TLS)."""

    code = "unreachable"

    transient = True


class TimeoutError_(ConnectionError_):  # noqa: N801 - avoids shadowing the builtin
    """The backend did not answer in time."""

    code = "timeout"


class AuthError(BackendError):
    """Credentials were refused, or a session/token could not be (re)established."""

    code = "auth"


class SessionLost(AuthError):
    """The server closed our session (DeviceHQ: another client took it). Retrying may work."""

    code = "session_lost"

    transient = True


class NotFound(BackendError):
    """The backend does not know the device, task or group asked for."""

    code = "not_found"


class Rejected(BackendError):
    """The server understood the request and refused it; ``message`` holds its own words."""

    code = "rejected"

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

    code = "server_error"

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

    code = "invalid_response"

    def __init__(self, message: str, *, backend: str | None = None, route: str | None = None) -> None:
        super().__init__(message if route is None else f"{message} (from {route})", backend=backend)
        self.route = route


class LimitReached(Rejected):
    """A documented quota (DeviceHQ: 25 unfinished tasks per account). Held, not failed."""

    code = "limit_reached"

    transient = True


class Unsupported(FieldtuiError):
    """The backend does not offer this operation; ``message`` says why."""

    code = "unsupported"


class DeviceNotFound(FieldtuiError):
    """No configured backend knows the device: exit code 3."""

    code = "device_not_found"


class NoBackendReachable(FieldtuiError):
    """Every backend is unreachable and nothing is cached: exit code 4."""

    code = "no_backend_reachable"
