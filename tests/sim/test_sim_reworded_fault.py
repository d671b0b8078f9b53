"""The ``reworded`` fault: error answers keep their status and shape, with words no client knows."""

from __future__ import annotations

from typing import Any

import httpx

from fieldtui.sim.faults import parse_fault_spec
from fieldtui.sim.server import REWORDED


def set_fault(sim: Any, backend: str, **faults: Any) -> None:
    response = sim.admin("PUT", f"/_sim/faults/{backend}", json=faults)
    assert response.status_code == 200, response.text


def login(sim: Any, http: httpx.Client) -> str:
    response = http.post(
        sim.urls["devicehq"] + "/session", headers={"X-API-KEY": sim.credentials.devicehq_api_key}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["meta"]["token"]
    return token


def test_a_taken_session_is_refused_in_other_words_with_the_same_status_and_shape(
    sim: Any, sim_clean: Any
) -> None:
    serial = next(iter(sim.fleet.of("devicehq")))
    url = f"{sim.urls['devicehq']}/devices/{serial}"
    with httpx.Client(timeout=10) as http:
        first = login(sim, http)
        login(sim, http)  # another client takes the account's one session
        plain = http.get(url, headers={"X-AUTH-TOKEN": first})
        set_fault(sim, "gateways", reworded=True)
        reworded = http.get(url, headers={"X-AUTH-TOKEN": first})
        again = http.get(url, headers={"X-AUTH-TOKEN": first})
    assert plain.status_code == reworded.status_code == 423
    [original] = plain.json()["errors"]
    [changed] = reworded.json()["errors"]
    assert set(changed) == set(original) == {"detail"}
    assert changed["detail"].startswith(REWORDED) and "session" not in changed["detail"].lower()
    assert again.json() == reworded.json()  # the same answer is reworded the same way


def test_answers_that_are_not_errors_are_left_alone(sim: Any, sim_clean: Any) -> None:
    serial = next(iter(sim.fleet.of("devicehq")))
    set_fault(sim, "gateways", reworded=True)
    with httpx.Client(timeout=10) as http:
        token = login(sim, http)
        device = http.get(f"{sim.urls['devicehq']}/devices/{serial}", headers={"X-AUTH-TOKEN": token})
        missing = http.get(f"{sim.urls['devicehq']}/devices/NO-SUCH-1", headers={"X-AUTH-TOKEN": token})
    assert device.status_code == 200 and device.json()["data"]["id"] == serial
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["detail"].startswith(REWORDED)


def test_the_fault_is_listed_and_parsed_like_the_other_flags(sim: Any, sim_clean: Any) -> None:
    assert parse_fault_spec("devicehq:reworded") == ("gateways", "reworded", True)
    set_fault(sim, "devicehq", reworded="yes")
    assert sim.admin("GET", "/_sim/faults").json()["gateways"]["reworded"] is True
    assert sim.admin("DELETE", "/_sim/faults").json()["gateways"]["reworded"] is False
