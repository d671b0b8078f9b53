"""The last line of defence: an unexpected error becomes one clear line and a log entry."""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, datetime

from fieldtui import paths
from fieldtui.logging_setup import redact


def report_unexpected(exc: BaseException) -> int:
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
    print(
        f"fieldtui: unexpected error: {type(exc).__name__}: {redact(str(exc))}\n"
        f"Details were written to {where}; please report them.",
        file=sys.stderr,
    )
    return 1
