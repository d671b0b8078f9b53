"""How the CLI reports an error: one vocabulary, one exit code per kind, JSON under ``--json``.

Every error reads ``<cloud>: <what happened> (<what to do>)`` (see ``fieldtui.core.errors``).
A person gets it on stderr after ``fieldtui:``; a script that asked for ``--json`` gets
``{"error": {"code", "message", "hint", "backend"}}`` on stdout, so it never parses an empty
stdout. The exit codes are README's: 1 is kept for failures nobody planned for.
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import UTC, datetime

from fieldtui import paths
from fieldtui.core.errors import (
    AuthError,
    BackendError,
    ConfigError,
    ConnectionError_,
    DeviceNotFound,
    FieldtuiError,
    InvalidResponse,
    NoBackendReachable,
    NotFound,
    SecretError,
    ServerError,
    Unsupported,
)
from fieldtui.core.text import strip_controls
from fieldtui.logging_setup import redact

EXIT_OK = 0
#: Something nobody planned for: a bug, with its details in the log.
EXIT_FAILURE = 1
#: The command line, the config file, a secret or the keyring needs fixing; or the device
#: cannot do what was asked (no telemetry); or an outbox id that names no action.
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNREACHABLE = 4
#: Actions are left in the outbox after a sync (see ``fieldtui outbox``).
EXIT_LEFT_QUEUED = 5
#: A change is in conflict or failed: the cloud refused it or the device changed under it.
EXIT_CONFLICT_OR_FAILED = 6

#: Most specific first: the first class ``exc`` is an instance of decides the exit code.
_EXIT_CODES: tuple[tuple[type[FieldtuiError], int], ...] = (
    (ConfigError, EXIT_USAGE),
    (SecretError, EXIT_USAGE),
    (Unsupported, EXIT_USAGE),
    (DeviceNotFound, EXIT_NOT_FOUND),
    (NoBackendReachable, EXIT_UNREACHABLE),
    (AuthError, EXIT_USAGE),
    (NotFound, EXIT_NOT_FOUND),
    (ConnectionError_, EXIT_UNREACHABLE),
    (ServerError, EXIT_UNREACHABLE),
    (InvalidResponse, EXIT_UNREACHABLE),
    (BackendError, EXIT_CONFLICT_OR_FAILED),
)


def exit_code(exc: FieldtuiError) -> int:
    """README's exit code for an error fieldtui raised on purpose (never 1: that is for bugs)."""
    for kind, code in _EXIT_CODES:
        if isinstance(exc, kind):
            return code
    # An invalid id, an outbox id that names nothing, a refused outbox operation: all fixed by
    # what the technician types or configures.
    return EXIT_USAGE


def print_json(document: object) -> None:
    """One line of strict JSON on stdout (control characters escaped, no NaN)."""
    text = json.dumps(document, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    print(text, flush=True)


def say(message: object) -> None:
    """One line for a person on stderr, ``fieldtui: ...``, without terminal control characters."""
    print(f"fieldtui: {strip_controls(message)}", file=sys.stderr, flush=True)


def report(exc: FieldtuiError, *, as_json: bool) -> int:
    """Show ``exc`` once, as JSON on stdout or a line on stderr; return its exit code."""
    if as_json:
        print_json({"error": exc.to_json()})
    else:
        say(exc)
    return exit_code(exc)


def report_unexpected(exc: BaseException, *, as_json: bool = False) -> int:
    """The last line of defence: an unexpected error becomes one clear line and a log entry."""
    where = "the log"
    try:
        log_dir = paths.ensure_private_dir(paths.log_dir())
        log_file = paths.create_private_file(log_dir / "errors.log")
        with log_file.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {datetime.now(UTC).isoformat()}\n")
            handle.write(redact("".join(traceback.format_exception(exc))))
        where = str(log_file)
    except OSError:
        pass
    message = f"unexpected error: {type(exc).__name__}: {redact(str(exc))}"
    hint = f"details were written to {where}; please report them"
    if as_json:
        print_json({"error": {"code": "unexpected", "message": message, "hint": hint, "backend": None}})
    print(f"fieldtui: {strip_controls(message)}\n{hint[0].upper()}{hint[1:]}.", file=sys.stderr)
    return EXIT_FAILURE
