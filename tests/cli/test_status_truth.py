"""What `fieldtui status` says when a cloud answers badly: never "not found" for a garbled answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_read_commands import fieldtui


@pytest.fixture
def garbling_things(sim_clean: Any) -> Iterator[Any]:
    response = sim_clean.admin("PUT", "/_sim/faults/things", json={"malformed": True})
    assert response.status_code == 200, response.text
    yield sim_clean
    sim_clean.admin("PUT", "/_sim/faults/things", json={"malformed": False})


def test_a_garbled_answer_from_the_only_cloud_is_its_invalid_response_not_not_found(
    garbling_things: Any, cli_env: dict[str, str]
) -> None:
    only_things = next(
        device_id for device_id, device in garbling_things.fleet.of("things").items() if not device.also_in
    )
    result = fieldtui(cli_env, "status", only_things, "--json")
    assert result.returncode == 4, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["code"] != "device_not_found"
    assert "things" in (error.get("backend") or "") + error["message"]
