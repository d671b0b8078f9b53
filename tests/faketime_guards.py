"""What libfaketime 0.9.10 (Debian's ``faketime``) breaks, mended before any test runs.

The suite must pass on any date: ``FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '+90d' pytest``.
Three defects of that libfaketime (all fixed upstream later) would fail it for reasons that say
nothing about fieldtui; each is mended here only when libfaketime is preloaded.
"""

from __future__ import annotations

import errno
import os
import select
import subprocess
import sysconfig
import threading
import time
from pathlib import Path
from typing import Any


def _sleep_is_broken() -> bool:
    """libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 fails every ``time.sleep`` with EINVAL.

    CPython 3.11 sleeps with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, whose deadline
    libfaketime shifts by the fake offset into an invalid time. ``subprocess.run(timeout=...)``
    sleeps that way while it waits, so every CLI test would fail under ``faketime -f '+90d'``
    without telling anything about fieldtui (which never calls ``time.sleep``).
    """
    try:
        time.sleep(0.0001)
    except OSError as exc:
        return exc.errno == errno.EINVAL
    return False


def _sleep_by_select(seconds: float) -> None:
    """``time.sleep`` through ``select``, whose relative timeout libfaketime leaves alone."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        select.select([], [], [], remaining)


def _steady_faketime() -> None:
    """Under ``faketime`` (libfaketime 0.9.10 as Debian ships it) the suite's processes are
    multi-threaded (the simulator's loop, the store's thread, MQTT clients), and the library
    the wrapper preloads by default is the one without locks: its shared state has data races
    (libfaketime #488 and #547, fixed upstream after 0.9.10; #547 was found on "a pytest-xdist
    suite where workers died at random on unrelated tests"). Workers died here the same way,
    SIGSEGV in the simulator's MQTT thread. The processes started from here (xdist workers,
    fieldtui, simulators) get the library's thread-safe build, ``libfaketimeMT`` (what
    ``faketime -m`` preloads), and parse ``FAKETIME`` once instead of every 10 s; with the
    monotonic clock left alone, its condition waits are left alone too."""
    preload = os.environ.get("LD_PRELOAD", "")
    if "libfaketime.so.1" not in preload or "FAKETIME" not in os.environ:
        return
    os.environ.setdefault("FAKETIME_CACHE_DURATION", str(10 * 365 * 86_400))
    if os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
        # Its "monotonic fix" for pthread_cond_timedwait, meant for a faked monotonic clock,
        # delays CPython's GIL hand-over (its condition waits on the real monotonic clock):
        # two threads, one busy, one waking every 10 ms: 5.5 ms late without faketime, up to
        # 30 ms (and 118 ms at worst) with it, and the same 5.5 ms with the fix off. A worker
        # holds the simulator's thread beside the tests: UI tests ran 5-10x slower.
        os.environ.setdefault("FAKETIME_FORCE_MONOTONIC_FIX", "0")
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for lib in (f"lib/{multiarch}", "lib64", "lib"):
        threaded = preload.replace("libfaketime.so.1", "libfaketimeMT.so.1")
        if Path(threaded.replace("$LIB", lib).split(":")[0].split()[0]).exists():
            os.environ["LD_PRELOAD"] = threaded
            return


def _environment_safe_from_threads() -> None:
    """libfaketime's ``pthread_cond_timedwait`` calls ``getenv("FAKETIME_FORCE_MONOTONIC_FIX")``
    on every call, and CPython waits for its GIL in ``pthread_cond_timedwait``: every thread
    that waits for the GIL reads the C environment, without the GIL. glibc's ``setenv`` of a
    *new* name reallocates that environment (the old array is freed) while the reader scans
    it: a worker died with SIGSEGV in ``getenv`` (seen with gdb: the simulator's thread in
    ``needs_forced_monotonic_fix``, the test's thread in ``__add_to_environ``), on tests as
    harmless as one that sets ``FIELDTUI_CONFIG``. Replacing a name that is there is safe (the
    array keeps its place), so once threads run, a new name goes only into ``os.environ``, an
    unset leaves the C environment alone, and every subprocess gets ``os.environ`` whole (what
    it would have inherited)."""
    real_putenv, real_unsetenv = os.putenv, os.unsetenv
    in_c_environment = set(os.environb)

    def putenv(name: bytes | str, value: bytes | str) -> None:
        key = os.fsencode(name)
        if key in in_c_environment or threading.active_count() == 1:
            real_putenv(name, value)
            in_c_environment.add(key)

    def unsetenv(name: bytes | str) -> None:
        if threading.active_count() == 1:
            real_unsetenv(name)
            in_c_environment.discard(os.fsencode(name))

    popen_init = subprocess.Popen.__init__

    def init_with_environment(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        if kwargs.get("env") is None:
            kwargs["env"] = dict(os.environ)
        popen_init(self, *args, **kwargs)

    os.putenv = putenv
    os.unsetenv = unsetenv
    subprocess.Popen.__init__ = init_with_environment  # type: ignore[method-assign]


def survive_faketime() -> None:
    """Mend what libfaketime breaks, in this process and in those it starts (xdist workers)."""
    if "libfaketime" not in os.environ.get("LD_PRELOAD", ""):
        return
    _steady_faketime()
    if _sleep_is_broken():
        time.sleep = _sleep_by_select
    _environment_safe_from_threads()
