"""A stateful property test of the outbox queue on a real SQLite file.

Hypothesis drives enqueue, claim, transient and permanent failures, crashes (leases left behind
and expired), late answers from a crashed owner, retry and drop, and checks after every step:
per-device order, nothing done is ever handed out again, final states stay final.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fieldtui.core.actions import Action, ActionState, ActionType
from fieldtui.service.store import OutboxStore, StoreError

T = TypeVar("T")
DEVICES = ["D0", "D1", "D2"]
LEASE = 30.0
OPEN = {ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT}
FINAL = {ActionState.DONE, ActionState.CANCELLED}


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp())
        self.store = self.run(OutboxStore.open(self.dir / "outbox.sqlite3"))
        self.clock = time.time()
        self.generation = 0
        self.owner = "owner-0"
        #: id -> (device, state) as the model expects it; ``order`` keeps enqueue order.
        self.model: dict[str, tuple[str, ActionState]] = {}
        self.order: list[str] = []
        #: action id -> the owner holding its lease (the model's view)
        self.holder: dict[str, str] = {}
        self.ever_final: dict[str, ActionState] = {}
        #: (action id, owner) pairs of crashed owners that may still answer late
        self.dead: list[tuple[str, str]] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _now(self) -> float:
        self.clock = max(self.clock, time.time())
        return self.clock

    def _in(self, *states: ActionState) -> list[str]:
        return [i for i in self.order if self.model[i][1] in states]

    def _set(self, action_id: str, state: ActionState) -> None:
        device, _ = self.model[action_id]
        self.model[action_id] = (device, state)
        if state in FINAL:
            self.ever_final[action_id] = state

    # -- rules -----------------------------------------------------------------------------
    @rule(device=st.sampled_from(DEVICES))
    def enqueue(self, device: str) -> None:
        action = Action(
            type=ActionType.SET_INSTALLATION_STATUS,
            device=device,
            backend="b",
            params={"status": "installed"},
        )
        record = self.run(self.store.enqueue(action))
        assert record.state is ActionState.QUEUED
        self.model[record.id] = (device, ActionState.QUEUED)
        self.order.append(record.id)

    @rule(limit=st.integers(1, 4))
    def claim(self, limit: int) -> None:
        now = self._now()
        claimed = self.run(self.store.claim(self.owner, limit=limit, lease_seconds=LEASE, now=now))
        for item in claimed:
            action_id = item.record.id
            device, state = self.model[action_id]
            assert action_id not in self.ever_final, "a done or cancelled action was handed out again"
            assert state in (ActionState.QUEUED, ActionState.SENDING)
            if state is ActionState.SENDING:
                assert item.needs_check, "an interrupted send must be checked before resending"
            earlier = [i for i in self.order[: self.order.index(action_id)] if self.model[i][0] == device]
            assert all(self.model[i][1] in FINAL for i in earlier), "claimed ahead of an earlier action"
            self._set(action_id, ActionState.SENDING)
            self.holder[action_id] = self.owner

    def _mine(self) -> list[str]:
        return [i for i in self._in(ActionState.SENDING) if self.holder.get(i) == self.owner]

    @precondition(lambda self: bool(self._mine()))
    @rule(data=st.data(), outcome=st.sampled_from(["done", "transient", "failed", "conflict"]))
    def answer(self, data: st.DataObject, outcome: str) -> None:
        action_id = data.draw(st.sampled_from(self._mine()))
        if outcome == "done":
            record = self.run(self.store.complete(self.owner, action_id))
            expected = ActionState.DONE
        elif outcome == "transient":
            record = self.run(
                self.store.reschedule(self.owner, action_id, delay=0, message="timeout", uncertain=True)
            )
            expected = ActionState.QUEUED
        else:
            expected = ActionState(outcome)
            record = self.run(self.store.settle_failed(self.owner, action_id, "refused", state=expected))
        assert record is not None and record.state is expected
        self._set(action_id, expected)
        self.holder.pop(action_id, None)

    @rule()
    def crash_and_restart(self) -> None:
        """The process dies: its leases stay behind; a new owner starts after they expire."""
        self.dead += [(i, h) for i, h in self.holder.items() if h == self.owner]
        self.generation += 1
        self.owner = f"owner-{self.generation}"
        self.clock = self._now() + LEASE + 1

    @precondition(lambda self: bool(self.dead))
    @rule(data=st.data())
    def late_answer_from_a_dead_owner(self, data: st.DataObject) -> None:
        """A crashed sender's answer: accepted only while nobody has taken the action over."""
        action_id, old = data.draw(st.sampled_from(self.dead))
        self.dead.remove((action_id, old))
        record = self.run(self.store.complete(old, action_id))
        if self.holder.get(action_id) == old and self.model[action_id][1] is ActionState.SENDING:
            assert record is not None and record.state is ActionState.DONE
            self._set(action_id, ActionState.DONE)
            self.holder.pop(action_id)
        else:
            assert record is None, "an owner whose lease was taken over recorded an outcome"

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        action_id = data.draw(st.sampled_from(self.order))
        state = self.model[action_id][1]
        if state in (ActionState.FAILED, ActionState.CONFLICT, ActionState.QUEUED):
            assert self.run(self.store.retry(action_id)).state is ActionState.QUEUED
            self._set(action_id, ActionState.QUEUED)
        else:
            with pytest.raises(StoreError):
                self.run(self.store.retry(action_id))

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        action_id = data.draw(st.sampled_from(self.order))
        state = self.model[action_id][1]
        if state in (ActionState.FAILED, ActionState.CONFLICT, ActionState.QUEUED):
            assert self.run(self.store.drop(action_id)).state is ActionState.CANCELLED
            self._set(action_id, ActionState.CANCELLED)
        else:
            with pytest.raises(StoreError):
                self.run(self.store.drop(action_id))

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def store_matches_model(self) -> None:
        records = {r.id: r for r in self.run(self.store.list_actions())}
        assert {i: r.state for i, r in records.items()} == {i: s for i, (_d, s) in self.model.items()}

    @invariant()
    def final_states_stay_final(self) -> None:
        for action_id, state in self.ever_final.items():
            assert self.model[action_id][1] is state

    @invariant()
    def at_most_one_in_flight_per_device_and_only_at_its_head(self) -> None:
        for device in DEVICES:
            mine = [i for i in self.order if self.model[i][0] == device]
            open_ids = [i for i in mine if self.model[i][1] in OPEN]
            sending = [i for i in mine if self.model[i][1] is ActionState.SENDING]
            assert len(sending) <= 1
            if sending:
                assert open_ids[0] == sending[0]


TestOutboxStateMachine = OutboxMachine.TestCase
TestOutboxStateMachine.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
