"""``time.sleep`` that works under ``faketime -f '+90d'`` (libfaketime 0.9.10, real monotonic clock).

With ``FAKETIME_DONT_FAKE_MONOTONIC=1`` libfaketime fails every ``time.sleep`` with EINVAL:
CPython 3.11 sleeps with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, whose deadline
libfaketime shifts into an invalid time. ``subprocess`` waits with timeouts that way, so a bench
script that waits for its processes would fail under faketime for no reason of its own.
``install()`` swaps in a ``select``-based sleep only when the real one is broken.
(``tests/conftest.py`` does the same for the test processes.)
"""

from __future__ import annotations

import errno
import select
import time


def sleep_is_broken() -> bool:
    try:
        time.sleep(0.0001)
    except OSError as exc:
        return exc.errno == errno.EINVAL
    return False


def sleep_by_select(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        select.select([], [], [], remaining)


def install() -> None:
    if sleep_is_broken():
        time.sleep = sleep_by_select
