"""A small loopback HTTP server that answers with a vendor's current shapes (fixtures).

Used only for what the simulator cannot serve: the simulator keeps the documents' shapes, so a
client's reading of a vendor's present-day answers (another auth scheme, another envelope) is
tested against this stub over real HTTP, never by mocking the simulator's routes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


#: Answers a request: (status, JSON body or None for an empty body).
Answer = Callable[[Seen], tuple[int, Any]]


@dataclass
class Stub:
    url: str
    routes: dict[tuple[str, str], Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: Any) -> None:
        self.routes[(method, path)] = lambda _seen: (status, body)


@contextmanager
def vendor_stub() -> Iterator[Stub]:
    """A stub on 127.0.0.1 (a free port); unknown routes answer 404 ``{"message": ...}``."""
    stub = Stub(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the base class names it so
            return  # keep test output clean

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen = Seen(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query),
                headers={key.lower(): value for key, value in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            stub.seen.append(seen)
            route = stub.routes.get((self.command, split.path))
            status, body = route(seen) if route else (404, {"message": f"no route {split.path}"})
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve  # http.server dispatches on these names

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
