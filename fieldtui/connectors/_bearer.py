"""The plumbing shared by REST connectors that send ``Authorization: Bearer <secret>`` (mysensor, fleet)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from fieldtui.config import FleetBackend, MySensorBackend
from fieldtui.connectors._http import (
    ErrorText,
    decode_json,
    default_error_text,
    make_client,
    raise_for_status,
    send,
)
from fieldtui.connectors.base import Connector
from fieldtui.core.errors import AuthError


class BearerRestConnector(Connector):
    """One keep-alive client (injected or owned), bearer auth, vendor error words, JSON bodies."""

    def __init__(
        self,
        name: str,
        config: MySensorBackend | FleetBackend,
        secret: str | None,
        *,
        client: httpx.AsyncClient | None = None,
        error_text: ErrorText = default_error_text,
    ) -> None:
        super().__init__(name)
        self._config = config
        self._secret = secret
        self._base = config.url
        self._error_text = error_text
        self._owns_client = client is None
        self._client = client or make_client(config.url, timeout=config.timeout, ca_bundle=config.ca_bundle)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _headers(self) -> dict[str, str]:
        if not self._secret:
            raise AuthError(
                "no API token configured",
                backend=self.name,
                hint=f"set it with `fieldtui login {self.name}` or the FIELDTUI_SECRET_* variable",
            )
        return {"Authorization": f"Bearer {self._secret}"}

    async def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> tuple[httpx.Response, Any]:
        """Send one request; the response and its JSON body (None for 204 or an empty body)."""
        response = await send(
            self._client,
            self.name,
            method,
            self._base + path,
            params=params,
            json=body,
            headers=self._headers(),
            timeout=self._config.timeout,
        )
        raise_for_status(response, self.name, error_text=self._error_text)
        if response.status_code == 204 or not response.content.strip():
            return response, None
        return response, decode_json(response, self.name)
