"""Shared HTTP plumbing for the REST connectors: one AsyncClient, bounded requests, error mapping.

Vendor-specific status handling stays in each connector; this maps what every vendor shares
(transport failures, 5xx/429, undecodable bodies) into the core error hierarchy.
"""

from __future__ import annotations

import html
import json
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from fieldtui.core.errors import (
    AuthError,
    BackendError,
    ConnectionError_,
    InvalidResponse,
    NotFound,
    Rejected,
    ServerError,
    TimeoutError_,
)
from fieldtui.core.send_window import check_send_window

#: A vendor's way to pull its own error words out of a failed response.
ErrorText = Callable[[httpx.Response], str | None]


def _has_cert_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


#: Verifying TLS contexts by CA bundle (None: the default trust store), shared by every client.
_TLS_CONTEXTS: dict[str | None, ssl.SSLContext] = {}


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying TLS context, made once per CA bundle: loading a trust store costs ~20 ms,
    and httpx would otherwise load it again for every backend's client."""
    context = _TLS_CONTEXTS.get(ca_bundle)
    if context is None:
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else httpx.create_ssl_context()
        _TLS_CONTEXTS[ca_bundle] = context
    return context


class GuardedTransport(httpx.AsyncBaseTransport):
    """httpx's transport, asking ``check_send_window()`` right before each request goes to the
    connection pool: the last moment this process can still refuse to send a change whose
    outbox lease ran out while it was stopped (see ``fieldtui.core.send_window``)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_send_window()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_client(base_url: str, *, timeout: float, ca_bundle: str | None) -> httpx.AsyncClient:
    """One keep-alive client per backend, TLS verified (with a CA bundle when configured)."""
    transport = httpx.AsyncHTTPTransport(
        verify=tls_context(ca_bundle or None),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        headers={"Accept": "application/json", "User-Agent": "fieldtui"},
        transport=GuardedTransport(transport),
    )


def segment(value: str, backend: str) -> str:
    """``value`` (an id) as exactly one URL path segment: every reserved character quoted.

    A ``/`` would add segments, ``?`` and ``#`` would end the path, and a bare ``.`` or ``..``
    would be removed by httpx as a dot segment (RFC 3986), so those dots are escaped too. An
    empty id names nothing: asking for it would reach the collection route instead.
    """
    if not value:
        raise NotFound("an empty id names nothing", backend=backend)
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def route_of(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


#: The longest error text taken from a response: an HTML error page or a runaway body must not
#: flood a message, a log line or the outbox list.
MAX_ERROR_TEXT = 300
_TAG = re.compile(r"<[^>]*>")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def short_text(text: str) -> str | None:
    """``text`` on one line, whitespace collapsed, cut to :data:`MAX_ERROR_TEXT` characters."""
    flat = " ".join(text.split())
    if len(flat) > MAX_ERROR_TEXT:
        flat = flat[: MAX_ERROR_TEXT - 3].rstrip() + "..."
    return flat or None


def body_as_text(response: httpx.Response) -> str | None:
    """A non-JSON body as short words: HTML tags (and scripts, styles) removed, entities decoded."""
    body = response.content[: MAX_ERROR_TEXT * 20].decode("utf-8", "replace")
    if "<" in body:
        body = html.unescape(_TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", body)))
    return short_text(body)


def default_error_text(response: httpx.Response) -> str | None:
    """Common shapes: {"message"}, {"error"}, {"errors": [{"detail"}]}, else the body as short text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        return body_as_text(response)
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            details = [
                str(item.get("detail") or item.get("title") or item)
                for item in errors[:10]
                if isinstance(item, Mapping)
            ]
            if details:
                return short_text("; ".join(details))
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return short_text(value)
            if isinstance(value, Mapping) and isinstance(value.get("message"), str):
                return short_text(str(value["message"]))
    return None


async def send(
    client: httpx.AsyncClient,
    backend: str,
    method: str,
    path: str,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; transport failures become core errors naming the backend and route."""
    route = route_of(method, path)
    try:
        return await client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise TimeoutError_(
            f"no answer in time to {route}",
            backend=backend,
            hint="the cloud or the network is slow; it will be retried",
        ) from None
    except httpx.TransportError as exc:
        if _has_cert_error(exc):
            raise ConnectionError_(
                "the server's TLS certificate is not trusted",
                backend=backend,
                hint="if this server uses a private CA, set ca_bundle for this backend in the config",
            ) from None
        raise ConnectionError_(
            f"cannot reach the server ({type(exc).__name__}: {exc or 'no detail'})", backend=backend
        ) from None


def raise_for_status(
    response: httpx.Response,
    backend: str,
    *,
    error_text: ErrorText = default_error_text,
) -> None:
    """Map an unsuccessful status to the core hierarchy (vendors with quirks pre-empt this)."""
    status = response.status_code
    if status < 400:
        return
    route = route_of(response.request.method, response.request.url.path)
    words = error_text(response) or response.reason_phrase or f"HTTP {status}"
    if status in (401, 403):
        raise AuthError(
            f"credentials refused: {words}", backend=backend, hint="check the secret with `fieldtui login`"
        )
    if status == 404:
        raise NotFound(words, backend=backend)
    if status == 429 or status >= 500:
        raise ServerError(f"{words} (HTTP {status} from {route})", backend=backend, status_code=status)
    raise Rejected(words, backend=backend, status_code=status)


def decode_json(response: httpx.Response, backend: str) -> Any:
    """The body as JSON, or InvalidResponse naming the route."""
    route = route_of(response.request.method, response.request.url.path)
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        raise InvalidResponse(
            "the server sent a body that is not JSON", backend=backend, route=route
        ) from None


def invalid_shape(response: httpx.Response, backend: str, what: str) -> InvalidResponse:
    route = route_of(response.request.method, response.request.url.path)
    return InvalidResponse(f"unexpected response shape: {what}", backend=backend, route=route)


__all__ = [
    "BackendError",
    "body_as_text",
    "decode_json",
    "default_error_text",
    "invalid_shape",
    "make_client",
    "raise_for_status",
    "route_of",
    "segment",
    "send",
    "short_text",
    "tls_context",
]
