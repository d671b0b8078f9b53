"""Run a :class:`~fieldtui.sim.runner.Simulator` on its own event loop in a background thread.

For callers whose main thread belongs to something else: ``fieldtui demo`` (Textual runs its own
loop) and the test suite (synchronous tests and tests with their own loops share one simulator).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from fieldtui.sim.runner import Simulator

T = TypeVar("T")


class SimulatorThread:
    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fieldtui-sim", daemon=True)

    def start(self, timeout: float = 120.0) -> Simulator:
        """Start the loop and the simulator; the simulator's own start-up error is raised here."""
        self._thread.start()
        try:
            self.call(self.simulator.start(), timeout)
        except BaseException:
            self.stop()
            raise
        return self.simulator

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run a coroutine on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            try:
                self.call(self.simulator.stop(), timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"the simulator did not stop within {timeout:g} s; still running:\n{self._pending()}"
                ) from None
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def _pending(self) -> str:
        """The loop's unfinished tasks and where each waits (to tell which part hangs)."""

        async def describe() -> str:
            lines: list[str] = []
            for task in asyncio.all_tasks():
                if task is asyncio.current_task():
                    continue
                frames = task.get_stack()
                where = f"{frames[-1].f_code.co_filename}:{frames[-1].f_lineno}" if frames else "?"
                lines.append(f"  {task.get_name()}: {task.get_coro()!r} at {where}")
            return "\n".join(lines)

        try:
            return self.call(describe(), 5)
        except TimeoutError:
            return "  (the loop does not answer)"

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
