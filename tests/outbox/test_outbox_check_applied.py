"""Before an uncertain action is dropped, the cloud is asked whether it took effect.

``SyncEngine.check_applied(record)`` runs the engine's own "already applied?" check without
sending anything: True when the cloud shows the change, False when it shows it was not made,
None when it cannot tell (the cloud does not answer).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from outbox_doubles import FAST

from fieldtui.core.actions import ActionState
from fieldtui.service.store import ActionRecord
from fieldtui.service.writes import Outbox, open_outbox

TIMEOUT = 2.0


@pytest.fixture
def quick_setup(sim_setup: Any) -> Iterator[Any]:
    text = sim_setup.config.read_text()
    sim_setup.config.write_text(re.sub(r'^(kind = "[a-z]+")$', rf"\1\ntimeout = {TIMEOUT}", text, flags=re.M))
    yield sim_setup


async def _one_uncertain_attempt(outbox: Outbox, record: ActionRecord) -> ActionRecord:
    await outbox.engine.drain()  # one pass: the attempt fails, the action goes back to the queue
    after = await outbox.store.get(record.id)
    assert after is not None and after.state is ActionState.QUEUED and after.uncertain, after
    return after


def _device(sim: Any, offset: int) -> Any:
    return sorted(sim.fleet.of("things").values(), key=lambda d: d.id)[offset]


def _other_status(device: Any) -> str:
    return next(s for s in ("quarantine", "retired") if s != device.installation_status)


async def test_an_answer_lost_status_change_is_found_applied(quick_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean, 11)
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await outbox.connectors["things"].installation_history(device.id)  # its token first
        record = await outbox.writes.set_installation_status(
            device.id, _other_status(device), backend="things"
        )
        sim_clean.admin("PUT", "/_sim/faults/things", {"answer_lost": 1})
        uncertain = await _one_uncertain_attempt(outbox, record)
        assert await outbox.engine.check_applied(uncertain) is True


async def test_a_refused_status_change_is_found_not_applied(quick_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean, 12)
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await outbox.connectors["things"].installation_history(device.id)
        record = await outbox.writes.set_installation_status(
            device.id, _other_status(device), backend="things"
        )
        sim_clean.admin("PUT", "/_sim/faults/things", {"error_rate": 1})  # 503: nothing applied
        uncertain = await _one_uncertain_attempt(outbox, record)
        sim_clean.admin("DELETE", "/_sim/faults")
        assert await outbox.engine.check_applied(uncertain) is False
        # Asking sent nothing: the cloud never saw the change.
        log = sim_clean.admin("GET", "/_sim/mutations?backend=things").json()
        assert not [m for m in log if m["path"].endswith(f"/things/{device.id}/installations")]


async def test_a_cloud_that_does_not_answer_cannot_tell(quick_setup: Any, sim_clean: Any) -> None:
    device = _device(sim_clean, 13)
    async with open_outbox(quick_setup.loaded(), backoff=FAST) as outbox:
        await outbox.connectors["things"].installation_history(device.id)
        record = await outbox.writes.set_installation_status(
            device.id, _other_status(device), backend="things"
        )
        sim_clean.admin("PUT", "/_sim/faults/things", {"answer_lost": 1})
        uncertain = await _one_uncertain_attempt(outbox, record)
        sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
        assert await outbox.engine.check_applied(uncertain) is None
