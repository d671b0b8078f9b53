"""DeviceHQ simulator: when a gateway checks in, computed rather than stored.

A gateway checks in every ``period`` seconds (8 to 12 s in the simulator's accelerated world)
on a grid anchored at its fleet ``last_seen``: check-in ``k`` happens at
``anchor + k * period``. An online gateway keeps checking in as the clock moves, an offline
one stopped at its anchor. History is therefore generated lazily from elapsed time, costs no
memory per check-in, and is the same for the same fleet and clock. The cloud keeps the last
:data:`RETAINED_CHECKINS` of them, as a real service bounds its history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fieldtui.sim.clouds.devicehq_wire import stable_hash
from fieldtui.sim.fleet import SimDevice

#: Check-ins a gateway had made before its anchor (its history when the simulator starts).
BACKFILL = 100
#: The history routes return at most this many of the most recent check-ins.
RETAINED_CHECKINS = 2000
#: Every n-th check-in reports signal strength, uploads logs, uploads the configuration.
SIGNAL_EVERY = 3
LOG_EVERY = 30
CONFIG_EVERY = 45


def period_of(serial: str) -> float:
    return 8.0 + (stable_hash(serial, "period") % 4001) / 1000.0


@dataclass(frozen=True, slots=True)
class Schedule:
    anchor: float
    period: float
    first_k: int  # the first check-in the cloud has a record of
    last_k: int  # the latest check-in at or before "now" (last_k < first_k: none at all)

    @classmethod
    def of(cls, device: SimDevice, now: float, floor: float | None = None) -> Schedule:
        """``floor``: check-ins at or before it are gone (the device was deleted then)."""
        period = period_of(device.id)
        anchor = device.last_seen
        last_k = math.floor((now - anchor) / period)
        if not device.online:
            last_k = min(0, last_k)
        first_k = -BACKFILL
        if floor is not None:
            first_k = max(first_k, math.floor((floor - anchor) / period) + 1)
        return cls(anchor, period, first_k, last_k)

    @property
    def empty(self) -> bool:
        return self.last_k < self.first_k

    def time(self, k: int) -> float:
        return self.anchor + k * self.period

    def latest(self) -> float | None:
        return None if self.empty else self.time(self.last_k)

    def count(self) -> int:
        return max(0, self.last_k - self.first_k + 1)

    def k_after(self, ts: float) -> int:
        """The first check-in strictly after ``ts`` (it may still lie in the future)."""
        return max(self.first_k, math.floor((ts - self.anchor) / self.period) + 1)

    def ks_between(self, start: float, end: float, *, retained: bool = False) -> range:
        """Check-ins ``k`` with ``start <= time(k) < end`` that have happened."""
        low = self.first_k
        if retained:
            low = max(low, self.last_k - RETAINED_CHECKINS + 1)
        lo = max(low, math.ceil((start - self.anchor) / self.period))
        hi = min(self.last_k, math.ceil((end - self.anchor) / self.period) - 1)
        return range(lo, hi + 1)
