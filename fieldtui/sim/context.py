"""What every simulated cloud is built from: the fleet, the clock, the credentials."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fieldtui.sim.fleet import Fleet


@dataclass(frozen=True, slots=True)
class SimCredentials:
    """The secrets the simulated clouds accept (written to ``PATH.env`` by --write-config)."""

    mysensor_token: str = field(default_factory=lambda: "ms-" + secrets.token_hex(16))
    things_client_id: str = "installer-7"
    things_client_secret: str = field(default_factory=lambda: "th-" + secrets.token_hex(16))
    devicehq_api_key: str = field(default_factory=lambda: secrets.token_urlsafe(14))
    #: Shared access key of the simulated MQTT devices (user property ``access_key``).
    mqtt_access_key: str = field(default_factory=lambda: "mq-" + secrets.token_hex(12))
    fleet_token: str = field(default_factory=lambda: "fl-" + secrets.token_hex(16))

    def secret_for(self, kind: str) -> str:
        return {
            "mysensor": self.mysensor_token,
            "things": self.things_client_secret,
            "devicehq": self.devicehq_api_key,
            "mqtt": self.mqtt_access_key,
            "fleet": self.fleet_token,
        }[kind]


@dataclass(slots=True)
class SimContext:
    fleet: Fleet
    credentials: SimCredentials
    #: Unix seconds; tests may replace it to move time (token expiry, task progress).
    clock: Callable[[], float] = time.time
    #: Behaviour randomness (task outcomes, telemetry values), seeded from the fleet's seed.
    rng: random.Random = field(default_factory=random.Random)

    def now(self) -> float:
        return self.clock()
