"""Where fieldtui's log goes (a private file in the log dir), with credentials redacted.

Without this, Python's last-resort handler prints warnings on stderr, where Textual draws the
app. Every record written here passes through :func:`redact` after formatting, so an API key
in a URL (httpx logs each request line), an ``Authorization``, ``X-API-KEY`` or
``X-AUTH-TOKEN`` header, a token in a JSON body, or any secret the environment holds never
reaches the file, whichever library logged it.

Nothing is opened (and ``logging.handlers`` is not imported) until a record is written: a quick
command that logs nothing pays only for a small handler object.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logging.handlers import RotatingFileHandler

from fieldtui import paths

LOG_FILE_NAME = "fieldtui.log"
#: Rotate at this size, keeping this many old files (a field laptop's disk is not ours to fill).
MAX_BYTES = 2_000_000
BACKUPS = 3
REDACTED = "[REDACTED]"
#: Environment variables whose values are secrets (the documented secret variables).
SECRET_ENV_PREFIX = "FIELDTUI_SECRET_"
#: Secrets shorter than this are not searched for verbatim (they would redact ordinary words).
_MIN_SECRET = 6

_SECRET_NAMES = (
    r"api[_-]?key|apikey|access[_-]?key|access[_-]?token|auth[_-]?token|token|client[_-]?secret"
    r"|secret|password|passwd"
)
#: ``?api_key=...`` / ``&token=...`` / ``&x_session_token=...`` in a URL or a query string: any
#: parameter whose name holds one of the secret words.
_QUERY = rf"(?i)([?&;][\w.-]*(?:{_SECRET_NAMES})[\w.-]*=)[^&#\s'\"<>]+"
#: ``https://user:pass@host`` (or a token as the user): the URL's user information.
_USERINFO = r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/?#\s@'\"<>]+(?=@)"
#: ``Authorization: Bearer x``, ``'X-API-KEY': 'x'``, ``x-auth-token=x`` in any quoting.
_HEADER = (
    r"(?i)((?:authorization|proxy-authorization|x-api-key|x-auth-token|access_key)['\"]?\s*[:=,]\s*['\"]?)"
    r"(?:(?:bearer|basic|token)\s+)?[^\s'\",;)}\]]+"
)
#: ``"token": "x"`` / ``'client_secret': 'x'`` in JSON or a repr.
_JSON_FIELD = rf"(?i)(['\"](?:{_SECRET_NAMES})['\"]\s*:\s*['\"])[^'\"]*"


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """The patterns above, compiled when something is first redacted (not by every command)."""
    return tuple(re.compile(pattern) for pattern in (_QUERY, _HEADER, _JSON_FIELD, _USERINFO))


def _secrets_from_env() -> list[str]:
    values = {
        value
        for name, value in os.environ.items()
        if name.startswith(SECRET_ENV_PREFIX) and len(value) >= _MIN_SECRET
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with credentials in URLs, headers and JSON fields, and known secrets, replaced."""
    for secret in _secrets_from_env() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    for pattern in _patterns():
        text = pattern.sub(rf"\1{REDACTED}", text)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then redacts the whole line (message, arguments and traceback)."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = _secrets_from_env()

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def _private_rotating_handler(path: Path) -> RotatingFileHandler:
    """A rotating file handler whose every file (after a rollover too) is created 0600, never
    briefly wider."""
    import logging.handlers

    class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
        def _open(self):  # type: ignore[no-untyped-def]  # typeshed types it per open() mode
            paths.create_private_file(Path(self.baseFilename))
            return super()._open()

    return PrivateRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")


class _DeferredFileHandler(logging.Handler):
    """Writes to the private rotating log file, opened when the first record arrives.

    If the file cannot be opened then, records are dropped (logging is never a reason to fail a
    command, and the last-resort handler must stay off stderr, where the app draws).
    """

    def __init__(self, path: Path, level: int) -> None:
        super().__init__(level)
        self.path = path
        self._target: logging.Handler | None = None
        self._broken = False

    def _file(self) -> logging.Handler | None:
        # Called from emit, under this handler's lock: one thread opens the file.
        if self._target is None and not self._broken:
            try:
                paths.ensure_private_dir(self.path.parent)
                target = _private_rotating_handler(self.path)
            except OSError:
                self._broken = True
                return None
            target.setFormatter(self.formatter)
            self._target = target
        return self._target

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 - logging's name
        super().setFormatter(fmt)
        if self._target is not None:
            self._target.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        target = self._file()
        if target is not None:
            target.emit(record)

    def flush(self) -> None:
        if self._target is not None:
            self._target.flush()

    def close(self) -> None:
        if self._target is not None:
            self._target.close()
        super().close()


_handler: logging.Handler | None = None


def log_file() -> Path:
    return paths.log_dir() / LOG_FILE_NAME


def configure_logging(level: str | None = None) -> Path:
    """Send log records (INFO and up, or ``FIELDTUI_LOG_LEVEL``) to the private log file.

    Safe to call more than once (the previous handler is replaced). Returns the file, created
    (0600, in a private directory) when the first record is written; one that cannot be
    created then leaves logging off: never a reason to fail a command.
    """
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
        _handler = None
    chosen = (level or os.environ.get("FIELDTUI_LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelName(chosen)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    target = paths.log_dir() / LOG_FILE_NAME
    handler = _DeferredFileHandler(target, numeric)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > numeric:
        root.setLevel(numeric)
    _handler = handler
    return target
