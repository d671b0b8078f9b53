"""Injected faults, per simulated backend: what a basement, a flaky proxy or a bad deploy looks like.

Faults are addressed by backend name (``sensors``, ``things``...) or by kind (``mysensor``...);
both resolve to the backend name. Every random decision comes from one seeded generator so a
failing test replays the same way.

The faults, in the order a request meets them:

* ``unreachable`` (flag): every connection is closed without a byte of answer.
* ``drop_rate`` (fraction): that share of requests is dropped the same way, *before* the cloud
  sees them (nothing applied).
* ``latency`` (seconds, up to 60): every request waits this long before the cloud sees it.
* ``error_rate`` (fraction): that share is answered 503 (an HTML page), nothing applied.
* ``answer_lost`` (fraction): that share of *changes* (non-GET requests) is applied, then the
  connection is closed without the answer: the client cannot tell whether it took effect.
* ``lands_late`` (fraction): that share of changes is applied, then the answer is held until the
  client gives up (closes the connection) or 60 s have passed, whichever is first: an answer that
  arrives later than any client timeout, i.e. never.
* ``malformed`` (flag): 2xx bodies arrive as broken JSON (a trailing comma).
* ``reworded`` (flag): error answers keep their status and JSON shape, but every string in them
  is replaced by words no client can have anticipated (clients must decide by behaviour).

Lost and late answers are only dealt to changes, so reads stay usable for the client's "did it
take effect?" check while the faults are on.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from fieldtui.sim.fleet import BACKEND_NAMES

#: The longest injected latency: a fault must not hold a test (or a connection) forever.
MAX_LATENCY = 60.0


@dataclass(frozen=True, slots=True)
class Faults:
    unreachable: bool = False
    latency: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    malformed: bool = False
    #: Error answers keep their status and JSON shape, but every string in them becomes words
    #: no client can have anticipated (a server with other wording).
    reworded: bool = False
    #: A change is applied, then its answer is lost (the connection closed without a response).
    answer_lost: float = 0.0
    #: A change is applied, then its answer is held past the client's timeout.
    lands_late: float = 0.0

    @property
    def active(self) -> bool:
        return self != _NONE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_NONE = Faults()
FAULT_KEYS = tuple(f.name for f in fields(Faults))


def resolve_backend(name: str) -> str:
    """A backend name or a kind, as the backend name; ValueError names what is allowed."""
    if name in BACKEND_NAMES.values():
        return name
    if name in BACKEND_NAMES:
        return BACKEND_NAMES[name]
    allowed = ", ".join(sorted(set(BACKEND_NAMES.values()) | set(BACKEND_NAMES)))
    raise ValueError(f"unknown backend {name!r}; allowed: {allowed}")


def _coerce(key: str, value: Any) -> bool | float:
    if key in ("unreachable", "malformed", "reworded"):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ValueError(f"fault {key!r} takes true or false, not {value!r}")
    if isinstance(value, bool):
        raise ValueError(f"fault {key!r} takes a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"fault {key!r} takes a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"fault {key!r} takes a finite number, not {value!r}")
    if key == "latency":
        if not 0 <= number <= MAX_LATENCY:
            raise ValueError(f"fault 'latency' is seconds between 0 and {MAX_LATENCY:g}, not {value!r}")
    elif not 0 <= number <= 1:
        raise ValueError(f"fault {key!r} is a fraction between 0 and 1, not {value!r}")
    return number


def parse_fault_spec(spec: str) -> tuple[str, str, bool | float]:
    """``BACKEND:FAULT[=VALUE]`` as (backend name, fault key, value); ValueError says what is wrong.

    A flag fault without a value (``things:unreachable``) means true.
    """
    backend, sep, rest = spec.partition(":")
    if not sep or not backend or not rest:
        raise ValueError(f"bad fault {spec!r}: expected BACKEND:FAULT[=VALUE], e.g. things:unreachable")
    key, has_value, raw = rest.partition("=")
    if key not in FAULT_KEYS:
        raise ValueError(f"bad fault {spec!r}: unknown fault {key!r}; allowed: {', '.join(FAULT_KEYS)}")
    if not has_value:
        if key not in ("unreachable", "malformed", "reworded"):
            raise ValueError(f"bad fault {spec!r}: {key} needs a value, e.g. {backend}:{key}=0.5")
        raw = "true"
    try:
        return resolve_backend(backend), key, _coerce(key, raw)
    except ValueError as exc:
        raise ValueError(f"bad fault {spec!r}: {exc}") from None


class FaultTable:
    """The faults in force per backend name, plus the seeded dice that decide each request."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._faults: dict[str, Faults] = {}
        self.rng = random.Random(seed)

    def get(self, backend: str) -> Faults:
        return self._faults.get(backend, _NONE)

    def update(self, backend: str, changes: dict[str, Any]) -> Faults:
        """Apply some fault keys to one backend (others keep their value). ValueError on bad input."""
        name = resolve_backend(backend)
        unknown = sorted(set(changes) - set(FAULT_KEYS))
        if unknown:
            raise ValueError(f"unknown fault key(s) {', '.join(unknown)}; allowed: {', '.join(FAULT_KEYS)}")
        coerced: dict[str, Any] = {key: _coerce(key, value) for key, value in changes.items()}
        updated = replace(self.get(name), **coerced)
        if updated.active:
            self._faults[name] = updated
        else:
            self._faults.pop(name, None)
        return updated

    def clear(self) -> None:
        self._faults.clear()
        # Reseeding makes a test that clears faults first independent of the tests before it.
        self.rng = random.Random(self._seed)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: self.get(name).as_dict() for name in BACKEND_NAMES.values()}

    def roll(self, rate: float) -> bool:
        """True with probability ``rate`` (no die is thrown for 0 or 1, keeping the sequence stable)."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        return self.rng.random() < rate
