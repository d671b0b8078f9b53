"""DeviceHQ simulator: the account's one session (document 002, "Authentication").

"At any given time, only 1 client per account can have a session open": opening a session
closes the previous one. "Sessions expire 5 minutes after the last request to the server."
Tokens of closed sessions are remembered for a while so their 423 says why.
"""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict
from dataclasses import dataclass

from fieldtui.sim.clouds.devicehq_wire import DHQError

SESSION_IDLE = 300.0
TOKEN_LENGTH = 14  # "a short string of approximately 14 characters"
EXPIRED = "Session expired: sessions expire 5 minutes after the last request; create a new one"
TAKEN_OVER = "Session closed: a new session was opened for this account (one open session per account)"
LOGGED_OUT = "Session closed by DELETE /api/v2/session"
_ALPHABET = string.ascii_letters + string.digits
_CLOSED_KEPT = 64


@dataclass(slots=True)
class _Session:
    token: str
    last_used: float


class SessionBook:
    def __init__(self) -> None:
        self._open: _Session | None = None
        self._closed: OrderedDict[str, str] = OrderedDict()

    def open(self, now: float) -> str:
        """A new session, closing the one that was open."""
        self.close(TAKEN_OVER)
        # Not from the seeded rng: after a simulator reset the same seed would hand out the
        # same tokens again, and a client's stale token would come back to life.
        token = "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))
        self._closed.pop(token, None)
        self._open = _Session(token, now)
        return token

    def close(self, reason: str) -> None:
        if self._open is not None:
            self._closed[self._open.token] = reason
            while len(self._closed) > _CLOSED_KEPT:
                self._closed.popitem(last=False)
            self._open = None

    def check(self, token: str, now: float) -> None:
        """Accept ``token`` (and count this request as the session's last), or raise a 423."""
        session = self._open
        if session is not None and secrets.compare_digest(token.encode(), session.token.encode()):
            if now - session.last_used >= SESSION_IDLE:
                self.close(EXPIRED)
                raise DHQError(EXPIRED)
            session.last_used = now
            return
        raise DHQError(self._closed.get(token, "Invalid session token"))
