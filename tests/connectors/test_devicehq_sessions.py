"""DeviceHQ sessions decided by behaviour, against the simulator over loopback HTTP.

A 423 on a session that worked is renewed and retried once whatever its words; only a 423
that repeats on the fresh session is a refusal, carried in the server's own words. The
simulator's ``reworded`` fault gives every error answer words no client can have anticipated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from fieldtui.config import DeviceHQBackend
from fieldtui.connectors.devicehq import DeviceHQConnector, forget_sessions, shared_session
from fieldtui.core.errors import LimitReached, Rejected, SessionLost
from fieldtui.sim.server import REWORDED

NO_SUCH_APP = "0" * 24


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    forget_sessions()
    yield
    forget_sessions()


@pytest.fixture
async def dhq(sim_clean: Any) -> AsyncIterator[DeviceHQConnector]:
    config = DeviceHQBackend(kind="devicehq", url=sim_clean.urls["devicehq"], timeout=10)
    async with DeviceHQConnector("gateways", config, sim_clean.credentials.devicehq_api_key) as connector:
        yield connector


def sessions_made(sim: Any) -> int:
    return shared_session(sim.urls["devicehq"], sim.credentials.devicehq_api_key).created


def reword(sim: Any) -> None:
    assert sim.admin("PUT", "/_sim/faults/gateways", json={"reworded": True}).status_code == 200


def mutations(sim: Any, suffix: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = sim.admin("GET", "/_sim/mutations?backend=gateways").json()
    return [m for m in log if m["path"].endswith(suffix)]


async def take_the_session(sim: Any) -> None:
    """Another client with the same API key opens a session: ours is closed."""
    async with httpx.AsyncClient(timeout=10) as other:
        response = await other.post(
            sim.urls["devicehq"] + "/session", headers={"X-API-KEY": sim.credentials.devicehq_api_key}
        )
    assert response.status_code == 200, response.text


def app_gateway(sim: Any) -> str:
    """A gateway that runs apps (the MTCDT family), so an app task is a sensible request."""
    serial: str = next(d.id for d in sim.fleet.of("devicehq").values() if (d.model or "").startswith("MTCDT"))
    return serial


async def test_a_change_after_another_client_took_the_session_is_renewed_whatever_the_words(
    dhq: DeviceHQConnector, sim_clean: Any
) -> None:
    serial = app_gateway(sim_clean)
    await dhq.get_device(serial)  # the session works
    reword(sim_clean)
    await take_the_session(sim_clean)
    before = sessions_made(sim_clean)
    device = await dhq.update_device(serial, {"description": "Pump room, level -2"})
    assert device.name == "Pump room, level -2"
    assert sessions_made(sim_clean) == before + 1
    assert sim_clean.admin("GET", f"/_sim/inspect/gateways/{serial}").json()["description"] == (
        "Pump room, level -2"
    )
    assert (
        len(mutations(sim_clean, f"/devices/{serial}")) == 1
    )  # applied once: the refused try changed nothing


@pytest.mark.parametrize("reworded", [False, True])
async def test_a_refusal_that_repeats_on_a_fresh_session_keeps_the_servers_words(
    dhq: DeviceHQConnector, sim_clean: Any, reworded: bool
) -> None:
    serial = app_gateway(sim_clean)
    await dhq.get_device(serial)  # the session works, so the first 423 may mean it was lost
    if reworded:
        reword(sim_clean)
    before = sessions_made(sim_clean)
    with pytest.raises(Rejected) as caught:
        await dhq.install_app(serial, NO_SUCH_APP)
    assert not isinstance(caught.value, SessionLost | LimitReached)
    words = REWORDED if reworded else f"App {NO_SUCH_APP} not found"
    assert words in str(caught.value)
    assert sessions_made(sim_clean) == before + 1  # renewed once, retried once, no more
    assert sim_clean.admin("GET", f"/_sim/inspect/gateways/{serial}").json()["tasks"] == []
    # The session the renewal made is still good for the next request.
    assert (await dhq.get_device(serial)).id == serial
    assert sessions_made(sim_clean) == before + 1


async def test_a_refusal_on_a_session_not_yet_used_costs_no_new_session(
    dhq: DeviceHQConnector, sim_clean: Any
) -> None:
    reword(sim_clean)
    with pytest.raises(Rejected, match=REWORDED):
        await dhq.install_app(app_gateway(sim_clean), NO_SUCH_APP)
    assert sessions_made(sim_clean) == 1
    assert len(mutations(sim_clean, "/session")) == 1
