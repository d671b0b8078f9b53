"""The simulator's mutation log (``/_sim/mutations``) says a credential was sent, never which:
the things client secret used to stand there in clear after every token request."""

from __future__ import annotations

import json
from typing import Any

import httpx


def test_the_things_client_secret_never_stands_in_the_mutation_log(sim_clean: Any) -> None:
    secret = sim_clean.credentials.things_client_secret
    answer = httpx.post(
        f"{sim_clean.urls['things']}/auth/client-token",
        json={"client_id": sim_clean.credentials.things_client_id, "client_secret": secret},
    )
    assert answer.status_code in (200, 201), answer.text
    log = sim_clean.admin("GET", "/_sim/mutations?backend=things").json()
    token_requests = [m for m in log if m["path"].endswith("/auth/client-token")]
    assert token_requests, "the token request is logged"
    assert token_requests[-1]["body"]["client_secret"] == "[redacted]"
    assert token_requests[-1]["body"]["client_id"] == sim_clean.credentials.things_client_id
    assert secret not in json.dumps(log)
