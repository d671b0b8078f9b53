"""Where fieldtui's log goes (a private file in the log dir), with credentials redacted.

Without this, Python's last-resort handler prints warnings on stderr, where Textual draws the
app. Every record written here passes through :func:`redact` after formatting, so an API key
in a URL (httpx logs each request line), an ``Authorization``, ``X-API-KEY`` or
``X-AUTH-TOKEN`` header, a token in a JSON body, or any secret the environment holds never
reaches the file, whichever library logged it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from pathlib import Path

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
#: ``?api_key=...`` / ``&token=...`` in a URL or a query string.
_QUERY = re.compile(rf"(?i)([?&;](?:{_SECRET_NAMES})=)[^&#\s'\"<>]+")
#: ``Authorization: Bearer x``, ``'X-API-KEY': 'x'``, ``x-auth-token=x`` in any quoting.
_HEADER = re.compile(
    r"(?i)((?:authorization|proxy-authorization|x-api-key|x-auth-token|access_key)['\"]?\s*[:=,]\s*['\"]?)"
    r"(?:(?:bearer|basic|token)\s+)?[^\s'\",;)}\]]+"
)
#: ``"token": "x"`` / ``'client_secret': 'x'`` in JSON or a repr.
_JSON_FIELD = re.compile(rf"(?i)(['\"](?:{_SECRET_NAMES})['\"]\s*:\s*['\"])[^'\"]*")


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
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    text = _HEADER.sub(rf"\1{REDACTED}", text)
    return _JSON_FIELD.sub(rf"\1{REDACTED}", text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then redacts the whole line (message, arguments and traceback)."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = _secrets_from_env()

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Each file it opens (after a rollover too) is created 0600, never briefly wider."""

    def _open(self):  # type: ignore[no-untyped-def]  # typeshed types it per open() mode
        paths.create_private_file(Path(self.baseFilename))
        return super()._open()


_handler: logging.Handler | None = None


def log_file() -> Path:
    return paths.log_dir() / LOG_FILE_NAME


def configure_logging(level: str | None = None) -> Path | None:
    """Send log records (INFO and up, or ``FIELDTUI_LOG_LEVEL``) to the private log file.

    Safe to call more than once (the previous handler is replaced). Returns the file, or None
    when it cannot be created (logging then stays off: never a reason to fail a command).
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
    try:
        target = paths.create_private_file(paths.ensure_private_dir(paths.log_dir()) / LOG_FILE_NAME)
        handler: logging.Handler = _PrivateRotatingFileHandler(
            target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError:
        _handler = logging.NullHandler()  # keeps the last-resort handler off stderr
        root.addHandler(_handler)
        return None
    handler.setLevel(numeric)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > numeric:
        root.setLevel(numeric)
    _handler = handler
    return target
