"""The "things" cloud (vendor document 001), simulated.

An independent reading of ``/work/shared/seeds/001_887f93ab426854eb.txt``. What the document
says is reproduced as it says it, quirks included:

* ``POST /auth/client-token`` hands out tokens that live 15 minutes; any number may be valid at
  once. Every other route wants ``Authorization: Bearer <token>``.
* ``alert_count`` is a *string*; ``location.lat``/``lon`` are documented as strings but sent as
  numbers (the document's own sample does so).
* Alert timestamps are ``YYYY-MM-DDTHH:MM:SS`` (UTC, no offset) and an alert may start at
  ``1970-01-01T00:00:00`` (the document's sample shows one).
* Only message ids 1500, 1501, 12200 and 13200 may be sent as commands, and the command list
  shows only those, even when the thing's log holds others (sent by the platform itself).
* Group ids may not contain whitespace nor be ``unassigned``; ``unassigned`` is the implicit
  group of every thing without a group.
* Installation statuses are ``new``, ``installed``, ``uninstalled``, ``quarantine``, ``retired``.

Where the document is silent the choices are written next to the code (search "Reading:").
Errors are ``{"error": <HTTP reason phrase>, "message": <what was wrong>}``.

State costs O(things) to build (one pass over the fleet). A request about one thing is O(1)
or O(limit); a group change is O(members of that group); only the listings that return every
group or every alerting thing are as large as what they return. Installation histories and command logs are seeded lazily,
on first touch, deterministically from the fleet seed and the tuid. Messages are never stored:
they are computed from the clock at a per-thing period, so they accumulate as time passes with
bounded memory.
"""

from __future__ import annotations

import json
import math
import secrets
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from random import Random
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fieldtui.sim.context import SimContext
from fieldtui.sim.fleet import SimDevice

TOKEN_LIFETIME = 15 * 60
#: Live tokens kept at most (oldest dropped first); expired ones are pruned on every issue.
MAX_TOKENS = 10_000
ALLOWED_COMMAND_IDS: tuple[int, ...] = (1500, 1501, 12200, 13200)
INSTALLATION_STATUSES: tuple[str, ...] = ("new", "installed", "uninstalled", "quarantine", "retired")
UNASSIGNED = "unassigned"
ALERT_GATEWAY_LOST = "gateway connection lost"
ALERT_HEARTBEAT = "heartbeat missed"
#: Reading: the document gives no maximum for ``limit``; the simulator caps it silently so a
#: request stays O(limit) whatever the caller asks for.
MAX_LIMIT = 1000
#: Per-thing caps on what clients can grow (oldest entries drop first).
MAX_COMMANDS_PER_THING = 1000
MAX_HISTORY_PER_THING = 1000

#: Message kinds by ``k % len(_MESSAGE_KINDS)``: mostly environment readings, every sixth a
#: battery report (the document's sample: tsmId 1110, tsmEv 10, batl).
_ENV_ID, _BATTERY_ID, _PERIODIC_EV = 12100, 1110, 10
_MESSAGE_KINDS: tuple[int, ...] = (_BATTERY_ID, _ENV_ID, _ENV_ID, _ENV_ID, _ENV_ID, _ENV_ID)
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S"


class ApiError(Exception):
    """A refusal, answered as ``{"error": reason, "message": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        body = {"error": HTTPStatus(self.status).phrase, "message": self.message}
        return JSONResponse(body, status_code=self.status, headers=headers)


@dataclass(slots=True)
class _Token:
    client_id: str
    expires: float


@dataclass(frozen=True, slots=True)
class _Cadence:
    """When a thing reports: message ``k`` is sent at ``k * period + phase`` (unix seconds)."""

    period: int
    phase: int
    first_k: int  # the first message after the thing was created


def format_ts(ts: float) -> str:
    """The document's alert timestamp: ``YYYY-MM-DDTHH:MM:SS``, UTC, no offset."""
    return time.strftime(_TS_FORMAT, time.gmtime(ts))


def _stable(*parts: object) -> int:
    """A process-independent hash (``hash()`` of a str is salted per process)."""
    return zlib.crc32(":".join(str(p) for p in parts).encode())


Handler = Callable[[Request, str], Awaitable[Response]]


class ThingsCloud:
    kind: ClassVar[str] = "things"
    prefix: ClassVar[str] = "/things/prod/v1"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self._seed = ctx.fleet.seed
        self._anchor = ctx.fleet.started
        self._things: dict[str, SimDevice] = ctx.fleet.of("things")
        self._tokens: dict[str, _Token] = {}
        self._groups: dict[str, str] = dict(ctx.fleet.groups)
        self._groups.pop(UNASSIGNED, None)
        self._group_of: dict[str, str] = {}
        self._members: dict[str, dict[str, None]] = {gid: {} for gid in self._groups}
        self._members[UNASSIGNED] = {}
        alerting: list[str] = []
        for tuid, dev in self._things.items():
            gid = dev.group if dev.group else UNASSIGNED
            if gid != UNASSIGNED and gid not in self._groups:
                self._groups[gid] = ""
                self._members[gid] = {}
            self._group_of[tuid] = gid
            self._members[gid][tuid] = None
            if dev.alerting:
                alerting.append(tuid)
        self._alerting: list[str] = alerting
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._commands: dict[str, deque[dict[str, Any]]] = {}
        self._cadence: dict[str, _Cadence] = {}

    # -- the framework's interface ------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        ep = self._endpoint
        return [
            Route("/auth/client-token", self._client_token, methods=["POST"]),
            Route("/things/alerts", ep(self._all_alerts), methods=["GET"]),
            Route("/things/alerts/count", ep(self._alert_count), methods=["GET"]),
            Route("/things/{tuid}", ep(self._thing), methods=["GET"]),
            Route("/things/{tuid}/alerts", ep(self._thing_alerts), methods=["GET"]),
            Route("/things/{tuid}/messages", ep(self._messages), methods=["GET"]),
            Route("/things/{tuid}/commands", ep(self._list_commands), methods=["GET"]),
            Route("/things/{tuid}/commands", ep(self._send_commands), methods=["POST"]),
            Route("/things/{tuid}/installations", ep(self._list_installations), methods=["GET"]),
            Route("/things/{tuid}/installations", ep(self._set_installation), methods=["POST"]),
            Route("/things/{tuid}/group", ep(self._get_group), methods=["GET"]),
            Route("/things/{tuid}/group", ep(self._set_group), methods=["POST"]),
            # Reading: the document writes the list as ``GET /groups/?...`` and creation as
            # ``POST /groups``; both spellings are served for both methods.
            Route("/groups", ep(self._create_group), methods=["POST"]),
            Route("/groups/", ep(self._create_group), methods=["POST"]),
            Route("/groups", ep(self._list_groups), methods=["GET"]),
            Route("/groups/", ep(self._list_groups), methods=["GET"]),
            Route("/groups/{groupid}/rename", ep(self._rename_group), methods=["POST"]),
            Route("/groups/{groupid}/things", ep(self._group_things), methods=["GET"]),
            Route("/groups/{groupid}", ep(self._delete_group), methods=["DELETE"]),
        ]

    def expire_credentials(self) -> None:
        self._tokens.clear()

    def inspect(self, device_id: str) -> dict[str, Any] | None:
        dev = self._things.get(device_id)
        if dev is None:
            return None
        history = self._history_of(device_id)
        now = self.ctx.now()
        cadence = self._cadence_of(dev)
        return {
            "tuid": device_id,
            "group": self._group_of[device_id],
            "installation_status": history[-1]["installation_status"],
            "installation_history": [dict(e) for e in reversed(history)],
            "alerting": dev.alerting,
            "alerts": self._alerts_of(dev, None, None, now),
            "commands": [_copy_command(c) for c in self._commands_of(device_id)],
            "message_count": self._message_count(dev, now),
            "message_period": cadence.period,
        }

    # -- plumbing -----------------------------------------------------------------------

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                client_id = self._authenticate(request)
                return await handler(request, client_id)
            except ApiError as exc:
                return exc.response()

        return endpoint

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "Missing access token: send 'Authorization: Bearer <token>'")
        entry = self._tokens.get(token)
        if entry is None:
            raise ApiError(401, "Invalid access token")
        if self.ctx.now() >= entry.expires:
            del self._tokens[token]
            raise ApiError(401, "Access token has expired")
        return entry.client_id

    def _thing_or_404(self, request: Request) -> SimDevice:
        tuid = request.path_params["tuid"]
        dev = self._things.get(tuid)
        if dev is None:
            raise ApiError(404, f"Thing '{tuid}' not found")
        return dev

    # -- auth -----------------------------------------------------------------------------

    async def _client_token(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise ApiError(400, "Request body must be a JSON object with client_id and client_secret")
            client_id, client_secret = body.get("client_id"), body.get("client_secret")
            if not isinstance(client_id, str) or not isinstance(client_secret, str):
                raise ApiError(400, "client_id and client_secret are required strings")
            creds = self.ctx.credentials
            id_ok = secrets.compare_digest(client_id.encode(), creds.things_client_id.encode())
            secret_ok = secrets.compare_digest(client_secret.encode(), creds.things_client_secret.encode())
            if not (id_ok and secret_ok):
                raise ApiError(401, "Invalid client credentials")
        except ApiError as exc:
            return exc.response()
        now = self.ctx.now()
        self._prune_tokens(now)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Token(client_id=client_id, expires=now + TOKEN_LIFETIME)
        return JSONResponse({"data": {"token": token}})

    def _prune_tokens(self, now: float) -> None:
        # Tokens are kept in issue order, which is expiry order: prune from the front.
        while self._tokens:
            oldest = next(iter(self._tokens))
            if self._tokens[oldest].expires > now and len(self._tokens) < MAX_TOKENS:
                break
            del self._tokens[oldest]

    # -- alerts ---------------------------------------------------------------------------

    async def _all_alerts(self, request: Request, client_id: str) -> Response:
        return JSONResponse({"data": {"alerting_tuids": list(self._alerting)}})

    async def _alert_count(self, request: Request, client_id: str) -> Response:
        return JSONResponse({"data": {"alert_count": str(len(self._alerting))}})

    async def _thing_alerts(self, request: Request, client_id: str) -> Response:
        dev = self._thing_or_404(request)
        lo = _number_param(request, "from")
        hi = _number_param(request, "to")
        return JSONResponse({"data": self._alerts_of(dev, lo, hi, self.ctx.now())})

    def _alerts_of(
        self, dev: SimDevice, lo: float | None, hi: float | None, now: float
    ) -> list[dict[str, Any]]:
        """The thing's alert history, one entry per alert type that has alerts in [lo, hi].

        Reading: an alert still active has ``to`` = the current time (it lasts at least until
        now); whether an alert is active is what ``/things/alerts`` says.
        """
        rng = Random(f"things-alerts:{self._seed}:{dev.id}")
        intervals: dict[str, list[tuple[float, float]]] = {ALERT_GATEWAY_LOST: [], ALERT_HEARTBEAT: []}
        if rng.random() < 0.1:
            # The document's quirk: a heartbeat alert "since 1970", ended by the first heartbeat.
            intervals[ALERT_HEARTBEAT].append((0.0, dev.created + rng.uniform(60, 3_600)))
        if not dev.extra.get("is_gateway"):
            for _ in range(rng.choice((0, 0, 1, 2, 3))):
                start = self._anchor - rng.uniform(2 * 86_400, 30 * 86_400)
                intervals[ALERT_GATEWAY_LOST].append((start, start + rng.uniform(300, 3_600)))
        if dev.alerting:
            if dev.online:
                kind, start = ALERT_GATEWAY_LOST, self._anchor - rng.uniform(60, 3_600)
            else:
                kind, start = ALERT_HEARTBEAT, dev.last_seen + rng.uniform(600, 1_800)
            intervals[kind].append((min(start, now), max(now, start)))
        out: list[dict[str, Any]] = []
        for kind, spans in intervals.items():
            hits = [
                {"from": format_ts(a), "to": format_ts(b)}
                for a, b in sorted(spans)
                if (lo is None or b >= lo) and (hi is None or a <= hi)
            ]
            if hits:
                out.append({"tuid": dev.id, "alert_type": kind, "alerts": hits})
        return out

    # -- thing info and messages --------------------------------------------------------

    async def _thing(self, request: Request, client_id: str) -> Response:
        dev = self._thing_or_404(request)
        now = self.ctx.now()
        last = self._last_message_ts(dev, now)
        data = {
            "battery_level": dev.battery,
            "timestamp": last if last is not None else int(min(dev.last_seen, now)),
            # Documented as strings, sent as numbers (as in the document's sample).
            "location": {"lat": dev.lat, "lon": dev.lon},
            "gateway_tuid": self._gateway_of(dev),
            "version": dev.firmware,
        }
        return JSONResponse({"data": data})

    def _gateway_of(self, dev: SimDevice) -> str | None:
        gateway = dev.extra.get("gateway_tuid")
        if isinstance(gateway, str):
            return gateway
        return dev.id if dev.extra.get("is_gateway") else None

    def _cadence_of(self, dev: SimDevice) -> _Cadence:
        cadence = self._cadence.get(dev.id)
        if cadence is None:
            h = _stable("things-cadence", self._seed, dev.id)
            period = 5 + h % 6
            phase = (h // 7) % period
            cadence = _Cadence(period=period, phase=phase, first_k=math.ceil((dev.created - phase) / period))
            self._cadence[dev.id] = cadence
        return cadence

    def _reporting_until(self, dev: SimDevice, now: float) -> float:
        """Online things report up to now; offline ones stopped when last seen."""
        return now if dev.online else min(now, dev.last_seen)

    def _k_range(self, dev: SimDevice, lo: float, hi: float) -> tuple[_Cadence, int, int]:
        c = self._cadence_of(dev)
        k_lo = max(c.first_k, math.ceil((lo - c.phase) / c.period))
        k_hi = math.floor((hi - c.phase) / c.period)
        return c, k_lo, k_hi

    def _message_count(self, dev: SimDevice, now: float) -> int:
        _, k_lo, k_hi = self._k_range(dev, dev.created, self._reporting_until(dev, now))
        return max(0, k_hi - k_lo + 1)

    def _last_message_ts(self, dev: SimDevice, now: float) -> int | None:
        c, k_lo, k_hi = self._k_range(dev, dev.created, self._reporting_until(dev, now))
        return k_hi * c.period + c.phase if k_hi >= k_lo else None

    def _message(self, dev: SimDevice, c: _Cadence, k: int) -> dict[str, Any]:
        ts = k * c.period + c.phase
        tsm_id = _MESSAGE_KINDS[k % len(_MESSAGE_KINDS)]
        msg: dict[str, Any] = {
            "tsmId": tsm_id,
            "tsmEv": _PERIODIC_EV,
            "tsmTs": ts,
            "tsmTuid": dev.id,
            "tsmGw": self._gateway_of(dev) or dev.id,
            "deploymentGroupId": self._group_of[dev.id],
        }
        if tsm_id == _BATTERY_ID:
            msg["batl"] = dev.battery if dev.battery is not None else 100
        else:
            h = _stable("things-msg", self._seed, dev.id, k)
            base = 17.0 + _stable("things-temp", dev.id) % 80 / 10.0
            daily = 2.5 * math.sin(2 * math.pi * (ts % 86_400) / 86_400)
            msg["temp"] = round(base + daily + (h % 200 - 100) / 100.0, 2)
            msg["hum"] = round(
                35.0 + _stable("things-hum", dev.id) % 250 / 10.0 + (h // 200 % 60 - 30) / 10.0, 1
            )
            msg["airp"] = round(101_325.0 + (h // 12_000 % 2_000 - 1_000), 1)
        return msg

    async def _messages(self, request: Request, client_id: str) -> Response:
        """Newest first, at most ``limit``, bounds inclusive.

        Reading: the document states no order; newest first makes ``limit=N`` mean "the last N
        messages". ``from`` is inclusive, so polling with ``from=<last tsmTs>`` returns that
        message again along with the new ones.
        """
        dev = self._thing_or_404(request)
        limit = _limit_param(request, required=True)
        assert limit is not None
        ids = _id_list_param(request, "messageid")
        events = _id_list_param(request, "eventid")
        lo = _number_param(request, "from")
        hi = _number_param(request, "to")
        now = self.ctx.now()
        top = self._reporting_until(dev, now)
        c, k_lo, k_hi = self._k_range(
            dev, dev.created if lo is None else max(lo, dev.created), top if hi is None else min(hi, top)
        )
        wanted = [
            r
            for r, tsm_id in enumerate(_MESSAGE_KINDS)
            if (ids is None or tsm_id in ids) and (events is None or _PERIODIC_EV in events)
        ]
        out: list[dict[str, Any]] = []
        if wanted:
            k = k_hi
            while k >= k_lo and len(out) < limit:
                if k % len(_MESSAGE_KINDS) in wanted:
                    out.append(self._message(dev, c, k))
                k -= 1
        return JSONResponse({"data": out})

    # -- commands -------------------------------------------------------------------------

    def _commands_of(self, tuid: str) -> deque[dict[str, Any]]:
        log = self._commands.get(tuid)
        if log is None:
            log = deque(maxlen=MAX_COMMANDS_PER_THING)
            dev = self._things[tuid]
            rng = Random(f"things-commands:{self._seed}:{tuid}")
            seeded: list[dict[str, Any]] = []
            if rng.random() < 0.3:
                # A configuration message the platform itself sent: in the log, never listed.
                ts = int(dev.created + rng.uniform(600, 86_400))
                cmd = {"tsmId": 17110, "tsmEv": 30, "profileId": 0, "transactionId": rng.randint(1, 99_999)}
                seeded.append(_command_record(tuid, ts, "platform", cmd))
            if rng.random() < 0.3:
                ts = int(self._anchor - rng.uniform(3_600, 20 * 86_400))
                cmd = {"tsmId": rng.choice(ALLOWED_COMMAND_IDS), "tsmEv": 1}
                seeded.append(_command_record(tuid, ts, f"field-tech-{rng.randint(1, 9)}", cmd))
            log.extend(sorted(seeded, key=lambda r: int(r["timestamp"])))
            self._commands[tuid] = log
        return log

    async def _list_commands(self, request: Request, client_id: str) -> Response:
        """Chronological; only allowed ids (document 001).

        Reading: with ``limit`` the most recent ``limit`` matching commands are returned, still
        oldest first.
        """
        dev = self._thing_or_404(request)
        limit = _limit_param(request, required=False)
        ids = _id_list_param(request, "messageid")
        events = _id_list_param(request, "eventid")
        lo = _number_param(request, "from")
        hi = _number_param(request, "to")
        picked: list[dict[str, Any]] = []
        for record in reversed(self._commands_of(dev.id)):
            if limit is not None and len(picked) >= limit:
                break
            cmd = record["command"]
            ts = record["timestamp"]
            if (
                cmd["tsmId"] in ALLOWED_COMMAND_IDS
                and (ids is None or cmd["tsmId"] in ids)
                and (events is None or cmd["tsmEv"] in events)
                and (lo is None or ts >= lo)
                and (hi is None or ts <= hi)
            ):
                picked.append(_copy_command(record))
        picked.reverse()
        return JSONResponse({"data": picked})

    async def _send_commands(self, request: Request, client_id: str) -> Response:
        dev = self._thing_or_404(request)
        body = await _json_body(request)
        if not isinstance(body, list) or not body:
            raise ApiError(400, "Request body must be a non-empty array of commands")
        allowed = ", ".join(str(i) for i in ALLOWED_COMMAND_IDS)
        for index, cmd in enumerate(body):
            if not isinstance(cmd, dict):
                raise ApiError(400, f"Command {index} must be an object with tsmId and tsmEv")
            for key in ("tsmId", "tsmEv"):
                if not _is_int(cmd.get(key)):
                    raise ApiError(400, f"Command {index}: {key} is required and must be a number")
            if cmd["tsmId"] not in ALLOWED_COMMAND_IDS:
                raise ApiError(
                    400,
                    f"Command {index}: message id {cmd['tsmId']} is not allowed; allowed message ids are {allowed}",
                )
        ts = int(self.ctx.now())
        log = self._commands_of(dev.id)
        sent: list[dict[str, Any]] = []
        for cmd in body:
            record = _command_record(dev.id, ts, client_id, cmd)
            log.append(record)
            sent.append(dict(record["command"]))
        return JSONResponse({"data": {"responsible": client_id, "commands": sent}})

    # -- installations --------------------------------------------------------------------

    def _history_of(self, tuid: str) -> deque[dict[str, Any]]:
        """Oldest first, as stored; seeded to agree with the fleet's installation_status."""
        history = self._history.get(tuid)
        if history is None:
            history = deque(maxlen=MAX_HISTORY_PER_THING)
            dev = self._things[tuid]
            rng = Random(f"things-installations:{self._seed}:{tuid}")
            created = int(dev.created)
            history.append(_history_entry(tuid, "new", created, "factory"))
            status = dev.installation_status or "new"
            if status != "new":
                ts = min(created + int(rng.uniform(86_400, 30 * 86_400)), int(self._anchor) - 60)
                history.append(
                    _history_entry(tuid, status, max(ts, created + 1), f"field-tech-{rng.randint(1, 9)}")
                )
            self._history[tuid] = history
        return history

    async def _list_installations(self, request: Request, client_id: str) -> Response:
        dev = self._thing_or_404(request)
        limit = _limit_param(request, required=False)
        history = self._history_of(dev.id)
        out: list[dict[str, Any]] = []
        for entry in reversed(history):
            if limit is not None and len(out) >= limit:
                break
            out.append(dict(entry))
        return JSONResponse({"data": out})

    async def _set_installation(self, request: Request, client_id: str) -> Response:
        dev = self._thing_or_404(request)
        body = await _json_body(request)
        status = body.get("installation_status") if isinstance(body, dict) else None
        if status not in INSTALLATION_STATUSES:
            raise ApiError(
                400,
                f"installation_status must be one of {', '.join(INSTALLATION_STATUSES)}; got {status!r}",
            )
        assert isinstance(status, str)
        self._history_of(dev.id).append(_history_entry(dev.id, status, int(self.ctx.now()), client_id))
        return JSONResponse({"data": {"tuid": dev.id, "installation_status": status}})

    # -- groups -----------------------------------------------------------------------------

    def _move(self, tuid: str, gid: str) -> None:
        old = self._group_of[tuid]
        if old == gid:
            return
        self._members[old].pop(tuid, None)
        self._members[gid][tuid] = None
        self._group_of[tuid] = gid

    async def _get_group(self, request: Request, client_id: str) -> Response:
        dev = self._thing_or_404(request)
        return JSONResponse({"data": {"group_id": self._group_of[dev.id], "tuid": dev.id}})

    async def _set_group(self, request: Request, client_id: str) -> Response:
        """Reading: groups are made only by ``POST /groups`` (which enforces the id rules), so
        naming a group that does not exist refuses with 404 rather than creating it; naming
        ``unassigned`` takes the thing out of its group."""
        dev = self._thing_or_404(request)
        body = await _json_body(request)
        gid = body.get("group_id") if isinstance(body, dict) else None
        if not isinstance(gid, str) or not gid:
            raise ApiError(400, "group_id is required")
        if gid != UNASSIGNED and gid not in self._groups:
            raise ApiError(404, f"Group '{gid}' not found")
        self._move(dev.id, gid)
        return JSONResponse({"data": {"group_id": gid, "tuid": dev.id}})

    async def _create_group(self, request: Request, client_id: str) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object with group_id")
        gid = _check_group_id(body.get("group_id"))
        description = body.get("group_description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            raise ApiError(400, "group_description must be a string")
        if gid in self._groups:
            raise ApiError(409, f"Group '{gid}' already exists")
        self._groups[gid] = description
        self._members[gid] = {}
        return JSONResponse({"data": {"group_id": gid, "group_description": description}})

    def _existing_group(self, request: Request, action: str) -> str:
        gid: str = request.path_params["groupid"]
        if gid == UNASSIGNED:
            raise ApiError(
                400, f"'{UNASSIGNED}' is the implicit group of things without a group: cannot {action} it"
            )
        if gid not in self._groups:
            raise ApiError(404, f"Group '{gid}' not found")
        return gid

    async def _rename_group(self, request: Request, client_id: str) -> Response:
        old = self._existing_group(request, "rename")
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object with group_id")
        new = _check_group_id(body.get("group_id"))
        if new == old:
            return JSONResponse({"data": {"group_id": new, "old": old, "renamed": False}})
        if new in self._groups:
            raise ApiError(409, f"Group '{new}' already exists")
        self._groups[new] = self._groups.pop(old)
        members = self._members.pop(old)
        self._members[new] = members
        for tuid in members:
            self._group_of[tuid] = new
        return JSONResponse({"data": {"group_id": new, "old": old, "renamed": True}})

    async def _list_groups(self, request: Request, client_id: str) -> Response:
        """Reading: the document gives no response shape. Each entry is ``group_id``,
        ``group_description`` and ``thing_count``, sorted by id; ``q`` matches id or
        description (case-insensitive substring). The implicit ``unassigned`` is not listed."""
        q = request.query_params.get("q", "").strip().lower()
        limit = _limit_param(request, required=False)
        out: list[dict[str, Any]] = []
        for gid in sorted(self._groups):
            if limit is not None and len(out) >= limit:
                break
            description = self._groups[gid]
            if q and q not in gid.lower() and q not in description.lower():
                continue
            out.append(
                {"group_id": gid, "group_description": description, "thing_count": len(self._members[gid])}
            )
        return JSONResponse({"data": out})

    async def _group_things(self, request: Request, client_id: str) -> Response:
        """Reading: no shape in the document; entries mirror ``GET /things/{tuid}/group``
        (``{"group_id", "tuid"}``). ``unassigned`` lists the things without a group."""
        gid: str = request.path_params["groupid"]
        if gid != UNASSIGNED and gid not in self._groups:
            raise ApiError(404, f"Group '{gid}' not found")
        return JSONResponse({"data": [{"group_id": gid, "tuid": tuid} for tuid in self._members[gid]]})

    async def _delete_group(self, request: Request, client_id: str) -> Response:
        gid = self._existing_group(request, "delete")
        del self._groups[gid]
        members = self._members.pop(gid)
        unassigned = self._members[UNASSIGNED]
        for tuid in members:
            self._group_of[tuid] = UNASSIGNED
            unassigned[tuid] = None
        return JSONResponse({"data": {"group_id": gid, "deleted": True}})


# -- helpers ---------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _command_record(tuid: str, ts: int, responsible: str, cmd: dict[str, Any]) -> dict[str, Any]:
    command = dict(cmd)
    command["tsmTs"] = ts
    command["tsmDstTuid"] = tuid
    return {"tuid": tuid, "timestamp": ts, "responsible": responsible, "command": command}


def _copy_command(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "command": dict(record["command"])}


def _history_entry(tuid: str, status: str, ts: int, responsible: str) -> dict[str, Any]:
    return {"tuid": tuid, "installation_status": status, "timestamp": ts, "responsible": responsible}


def _check_group_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError(400, "group_id is required and must be a non-empty string")
    if any(ch.isspace() for ch in value):
        raise ApiError(400, f"Invalid group_id {value!r}: group id must not contain whitespace")
    if value == UNASSIGNED:
        raise ApiError(400, f'Invalid group_id: group id must not be named "{UNASSIGNED}"')
    return value


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise ApiError(400, "Request body is required (application/json)")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None


def _number_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"'{name}' must be a unix timestamp (number); got {raw!r}") from None
    if not math.isfinite(value):
        raise ApiError(400, f"'{name}' must be a finite number")
    return value


def _limit_param(request: Request, *, required: bool) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        if required:
            raise ApiError(400, "'limit' is required")
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"'limit' must be a positive integer; got {raw!r}") from None
    if value < 1:
        raise ApiError(400, f"'limit' must be a positive integer; got {raw!r}")
    return min(value, MAX_LIMIT)


def _id_list_param(request: Request, name: str) -> set[int] | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    out: set[int] = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.add(int(part))
        except ValueError:
            raise ApiError(400, f"'{name}' must be a comma-separated list of numbers; got {raw!r}") from None
    return out
