"""A running sync engine (the app) sees changes another process queues in the same outbox.

The technician has the app open and types ``fieldtui --offline set-status ...`` in a shell: that
process only commits the change to the outbox file. Nothing in the app's process is told, so
the engine's ``run()`` must notice on its own (it polls SQLite's ``data_version``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from outbox_doubles import FAST

from fieldtui.core.actions import ActionState
from fieldtui.service.writes import open_outbox


def _installation_posts(sim: Any, device: str) -> list[Any]:
    log = sim.admin("GET", "/_sim/mutations?backend=things").json()
    return [
        m["body"]["installation_status"] for m in log if m["path"].endswith(f"/things/{device}/installations")
    ]


async def _shell(setup: Any, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *setup.cli(),
        *args,
        env=setup.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_the_running_engine_syncs_a_change_queued_by_another_process(
    sim_setup: Any, sim_clean: Any
) -> None:
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[0]
    target = "retired" if device.installation_status != "retired" else "installed"
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as app:
        app.engine.store_poll = 0.5
        runner = asyncio.create_task(app.engine.run())
        try:
            await asyncio.sleep(0.3)  # the engine is idle: nothing queued, asleep until woken
            printed = await _shell(sim_setup, "--offline", "set-status", device.id, target)
            assert "queued: offline (--offline)" in printed
            queued_at = time.monotonic()
            [record] = await app.store.list_actions()
            while (
                current := await app.store.get(record.id)
            ) is not None and current.state is not ActionState.DONE:
                assert time.monotonic() - queued_at < 5, f"still {current.state.value}: the app never noticed"
                await asyncio.sleep(0.05)
            # Within a poll (plus the send), not whenever something else happens to wake the app.
            assert time.monotonic() - queued_at < 0.5 + 2.0
        finally:
            await app.engine.stop()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    assert _installation_posts(sim_clean, device.id) == [target]  # once
    assert sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()["installation_status"] == target


async def test_a_retry_made_in_a_shell_is_sent_by_the_running_app_within_seconds(
    sim_setup: Any, sim_clean: Any
) -> None:
    """The default poll interval; a retry made in the shell is picked up too."""
    device = sorted(sim_clean.fleet.of("things").values(), key=lambda d: d.id)[1]
    async with open_outbox(sim_setup.loaded(), backoff=FAST) as app:
        assert app.engine.store_poll <= 2.0
        sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
        queued = await app.writes.move_to_group(device.id, "no-such-group", backend="things")
        await app.engine.drain()  # unreachable: back to queued, not failed
        sim_clean.admin("DELETE", "/_sim/faults")
        await asyncio.sleep(0.25)
        await app.engine.drain()  # the group does not exist: failed with the server's words
        failed = await app.store.get(queued.id)
        assert failed is not None and failed.state is ActionState.FAILED
        runner = asyncio.create_task(app.engine.run())
        try:
            await asyncio.sleep(0.3)
            await _shell(sim_setup, "outbox", "retry", queued.id[:12])
            retried_at = time.monotonic()
            while (current := await app.store.get(queued.id)) is not None and (
                current.attempts <= failed.attempts or current.state is not ActionState.FAILED
            ):
                assert time.monotonic() - retried_at < 6, "the app never noticed the retry"
                await asyncio.sleep(0.05)
            assert current is not None and "no-such-group" in (current.last_error or "")  # sent again
        finally:
            await app.engine.stop()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
