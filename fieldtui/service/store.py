"""The local SQLite store: the durable outbox of technician actions and the offline read cache.

One connection, owned by one thread: every call is handed to that thread and awaited, so the
event loop never blocks on SQLite. Calls that arrive while a transaction is being written are
committed together in the next one (group commit): each caller still returns only once its own
change is on disk (WAL, ``synchronous=FULL``), but a burst of enqueues or results costs one fsync.
Commits whose loss to a power cut cannot change an outcome (a lease renewed or confirmed, an
action rescheduled after a failed try, the read cache) are not fsynced on their own: they are
in the WAL (a killed process loses nothing) and reach the disk with the next durable commit.

Two processes may share one file (the app and ``fieldtui outbox sync``): an action is sent only
by the process holding its lease, taken and checked inside ``BEGIN IMMEDIATE`` transactions.

Nothing is lost silently (see ``storage``): the file's identity is checked before every write
(a deleted or replaced outbox refuses the change instead of answering "queued"), a ledger
beside the file remembers how many actions were ever queued (so a write-ahead log lost after a
crash is reported as lost actions, never as an empty outbox), rows that cannot be read are set
aside as ``damaged``, and every storage fault is a :class:`StorageFault` naming the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from fieldtui import paths
from fieldtui.core.actions import Action, ActionState, ActionType, groups_touched
from fieldtui.core.models import Device, Group, InstallationRecord, Task
from fieldtui.service.ports import Cached
from fieldtui.service.storage import (
    FileIdentity,
    Loss,
    StorageFault,
    StoreError,
    check_ledger,
    describe_fault,
    file_identity,
    losses,
    open_for_salvage,
    record_ledger,
    replaced_fault,
)

__all__ = ["ActionRecord", "Claimed", "Loss", "OutboxStore", "StorageFault", "StoreError"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Open states keep their place in a device's queue: later actions wait behind them.
OPEN_STATES = (ActionState.QUEUED, ActionState.SENDING, ActionState.FAILED, ActionState.CONFLICT)
_OPEN_SQL = "('queued', 'sending', 'failed', 'conflict')"
BUSY_TIMEOUT_MS = 15_000
#: Pending states: an action in one of them may still reach the cloud (see ``_depends_sql``).
_PENDING_SQL = "('queued', 'sending')"
#: The head (oldest open action) of every queue key, as ``seq``. Jumps from key to key through
#: the ``actions_open`` index (two seeks a key) instead of grouping every open action: with
#: 10,000 queued it costs ~1 ms instead of ~12, and a drain asks it at every claim.
_HEADS_SQL = (
    "WITH RECURSIVE k(key) AS ("
    f" SELECT MIN(queue_key) FROM actions INDEXED BY actions_open WHERE state IN {_OPEN_SQL}"
    " UNION ALL SELECT (SELECT MIN(queue_key) FROM actions INDEXED BY actions_open"
    f"  WHERE state IN {_OPEN_SQL} AND queue_key > k.key) FROM k WHERE k.key IS NOT NULL)"
    " SELECT (SELECT MIN(seq) FROM actions INDEXED BY actions_open"
    f"  WHERE state IN {_OPEN_SQL} AND queue_key = k.key) AS seq FROM k WHERE k.key IS NOT NULL"
)

#: Schema migrations, in order; the schema_version table records how many have been applied.
#: Never edit a released migration: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE actions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            device TEXT,
            backend TEXT,
            queue_key TEXT NOT NULL,
            params TEXT NOT NULL,
            precondition TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('queued', 'sending', 'done', 'failed', 'conflict', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            uncertain INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            lease_owner TEXT,
            lease_until REAL,
            result TEXT,
            first_sent_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            done_at REAL
        )""",
        f"CREATE INDEX actions_open ON actions (queue_key, seq) WHERE state IN {_OPEN_SQL}",
        "CREATE INDEX actions_state ON actions (state, seq)",
        """CREATE TABLE cache_devices (
            backend TEXT NOT NULL, id TEXT NOT NULL, name TEXT, data TEXT NOT NULL,
            fetched_at REAL NOT NULL, PRIMARY KEY (backend, id))""",
        "CREATE INDEX cache_devices_id ON cache_devices (id)",
        """CREATE TABLE cache_tasks (
            backend TEXT NOT NULL, device TEXT NOT NULL, data TEXT NOT NULL,
            fetched_at REAL NOT NULL, PRIMARY KEY (backend, device))""",
        """CREATE TABLE cache_groups (
            backend TEXT NOT NULL PRIMARY KEY, data TEXT NOT NULL, fetched_at REAL NOT NULL)""",
        """CREATE TABLE cache_history (
            backend TEXT NOT NULL, device TEXT NOT NULL, data TEXT NOT NULL,
            fetched_at REAL NOT NULL, PRIMARY KEY (backend, device))""",
    ),
    # Pending group actions, which moves into their group wait for (``_depends_sql``).
    (
        f"CREATE INDEX actions_pending_groups ON actions (seq) WHERE device IS NULL AND state IN {_PENDING_SQL}",
    ),
    # Rows that cannot be read, set aside so they stop nobody; actions found lost on open.
    (
        """CREATE TABLE damaged_actions (
            seq INTEGER PRIMARY KEY, id, type, device, backend, state, params, precondition,
            reason TEXT NOT NULL, found_at REAL NOT NULL)""",
        """CREATE TABLE outbox_losses (
            first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, cause TEXT NOT NULL,
            found_at REAL NOT NULL)""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def new_owner_id() -> str:
    """A lease owner id: ``host:pid:token`` (the pid lets a restart see that its owner died)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_dead(owner: str) -> bool:
    """True only when ``owner`` was a process on this machine that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class ActionRecord(BaseModel):
    """An action as the outbox holds it: the intent plus where it is in its life."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    action: Action
    seq: int
    state: ActionState
    attempts: int
    #: A send may have reached the server without us seeing the answer: check before resending.
    uncertain: bool
    next_attempt_at: datetime
    last_error: str | None
    lease_owner: str | None
    lease_until: datetime | None
    result: dict[str, Any]
    first_sent_at: datetime | None
    updated_at: datetime
    done_at: datetime | None

    @property
    def id(self) -> str:
        return self.action.id

    @property
    def queue_key(self) -> str:
        return self.action.queue_key

    def describe(self) -> str:
        """One line a technician reads: ``move D1 to roof``."""
        a = self.action
        p = a.params
        device = a.device or "?"
        match a.type:
            case ActionType.SET_INSTALLATION_STATUS:
                return f"set {device} status to {p.get('status')}"
            case ActionType.MOVE_TO_GROUP:
                return f"move {device} to group {p.get('group')}"
            case ActionType.CREATE_TASK:
                return f"create {p.get('type')} task on {device}"
            case ActionType.CANCEL_TASK:
                return f"cancel task {p.get('task_id')} on {device}"
            case ActionType.DELETE_TASK:
                return f"delete task {p.get('task_id')} on {device}"
            case ActionType.UPDATE_DEVICE:
                return f"update {device} ({', '.join(sorted(p.get('fields', {})))})"
            case ActionType.SEND_COMMAND:
                return f"send command {p.get('name')} to {device}"
            case ActionType.CREATE_GROUP:
                return f"create group {p.get('group')}"
            case ActionType.RENAME_GROUP:
                return f"rename group {p.get('group')} to {p.get('new_group')}"
            case ActionType.DELETE_GROUP:
                return f"delete group {p.get('group')}"
            case ActionType.CREATE_DEVICE:
                verb = "register" if "uuid" in (p.get("fields") or {}) else "create"
                return f"{verb} device {device} on {a.backend}"
            case ActionType.DELETE_DEVICE:
                return f"delete device {device} from {a.backend}"
            case ActionType.SET_CLOUD_SETTING:
                return f"set cloud setting {p.get('property')} of {device}"
        return f"{a.type.value} {device}"  # pragma: no cover - every type is matched above

    def to_json(self) -> dict[str, Any]:
        a = self.action

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": a.id,
            "type": a.type.value,
            "device": a.device,
            "backend": a.backend,
            "params": a.params,
            "precondition": a.precondition,
            "state": self.state.value,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at) if self.state is ActionState.QUEUED else None,
            "last_error": self.last_error,
            "result": self.result,
            "created_at": iso(a.created_at),
            "updated_at": iso(self.updated_at),
            "done_at": iso(self.done_at),
            "description": self.describe(),
        }


class Claimed(BaseModel):
    """An action this process now holds the lease on, with whether it must be checked first."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    record: ActionRecord
    #: A previous attempt may have taken effect (a crash in ``sending``, an unanswered request).
    needs_check: bool
    #: Taken over from a sender that stopped while ``sending`` (crashed, killed, lease expired).
    interrupted: bool
    #: When the action last changed before this claim (an interrupted sender's last sign of life).
    previous_update: datetime


_COLUMNS = (
    "seq, id, type, device, backend, params, precondition, state, attempts, uncertain, "
    "next_attempt_at, last_error, lease_owner, lease_until, result, first_sent_at, "
    "created_at, updated_at, done_at"
)


def _record(row: sqlite3.Row) -> ActionRecord:
    action = Action(
        id=row["id"],
        type=ActionType(row["type"]),
        device=row["device"],
        backend=row["backend"],
        params=json.loads(row["params"]),
        precondition=json.loads(row["precondition"]),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
    )
    next_at = _dt(row["next_attempt_at"])
    updated = _dt(row["updated_at"])
    assert next_at is not None and updated is not None
    return ActionRecord(
        action=action,
        seq=row["seq"],
        state=ActionState(row["state"]),
        attempts=row["attempts"],
        uncertain=bool(row["uncertain"]),
        next_attempt_at=next_at,
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_until=_dt(row["lease_until"]),
        result=json.loads(row["result"]) if row["result"] else {},
        first_sent_at=_dt(row["first_sent_at"]),
        updated_at=updated,
        done_at=_dt(row["done_at"]),
    )


def _touched_sql(x: str) -> tuple[str, str]:
    """SQL for the (up to two) groups row ``x`` names, as ``Action.groups_touched`` says."""
    one = (
        f"NULLIF(CASE {x}.type WHEN 'update_device' THEN json_extract({x}.params, '$.fields.group')"
        f" WHEN 'move_to_group' THEN json_extract({x}.params, '$.group')"
        f" WHEN 'create_group' THEN json_extract({x}.params, '$.group')"
        f" WHEN 'rename_group' THEN json_extract({x}.params, '$.group')"
        f" WHEN 'delete_group' THEN json_extract({x}.params, '$.group') END, '')"
    )
    two = f"NULLIF(CASE {x}.type WHEN 'rename_group' THEN json_extract({x}.params, '$.new_group') END, '')"
    return one, two


def _depends_sql(a: str = "a", d: str = "d") -> str:
    """True when row ``a`` must wait for row ``d``, an earlier pending action of another queue.

    That is ``d`` naming one of ``a``'s groups on the same backend (an action not yet bound to a
    backend may be bound to any), where one of the two is a group action: a move into a group
    waits for the group's pending creation or rename, a deletion for the moves into the group
    made before it. A failed or conflicting ``d`` no longer holds ``a`` (it may never be sent);
    two devices' actions never hold each other (different devices sync concurrently).
    """
    a1, a2 = _touched_sql(a)
    d1, d2 = _touched_sql(d)
    return (
        f"{d}.seq < {a}.seq AND {d}.state IN {_PENDING_SQL} AND {a1} IS NOT NULL"
        f" AND ({a}.device IS NULL OR {d}.device IS NULL)"
        f" AND ({a}.backend IS NULL OR {d}.backend IS NULL OR {d}.backend = {a}.backend)"
        f" AND ({d1} IN ({a1}, {a2}) OR {d2} IN ({a1}, {a2}))"
    )


class _PendingGroups:
    """The pending group actions at the time of one claim: what device actions may wait for.

    Device actions are checked against this (usually very short) list in Python, so claiming
    from a long queue of moves stays as cheap as before; a group action at the head of its
    queue, rarer, asks SQLite whether an earlier pending move touches its group.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._rows: list[tuple[int, str | None, frozenset[str]]] = []
        for seq, kind, backend, params in conn.execute(
            "SELECT seq, type, backend, params FROM actions INDEXED BY actions_pending_groups"
            f" WHERE device IS NULL AND state IN {_PENDING_SQL} ORDER BY seq"
        ):
            try:
                touched = frozenset(groups_touched(ActionType(kind), json.loads(params)))
            except (ValueError, KeyError, TypeError):
                continue  # unreadable: set aside when it is claimed or listed
            self._rows.append((seq, backend, touched))

    def holds(self, row: sqlite3.Row) -> bool:
        """True when the head ``row`` must wait for an earlier pending action (``_depends_sql``)."""
        kind = ActionType(row["type"])
        if kind not in _GROUP_NAMING:
            return False
        touched = set(groups_touched(kind, json.loads(row["params"])))
        if not touched:
            return False
        if row["device"] is None:
            found = self._conn.execute(
                f"SELECT 1 FROM actions AS a WHERE a.seq = ? AND EXISTS"
                f" (SELECT 1 FROM actions AS d WHERE {_depends_sql()})",
                (row["seq"],),
            ).fetchone()
            return found is not None
        backend = row["backend"]
        return any(
            seq < row["seq"] and (backend is None or other is None or other == backend) and touched & groups
            for seq, other, groups in self._rows
        )


_GROUP_NAMING = frozenset(
    {
        ActionType.MOVE_TO_GROUP,
        ActionType.UPDATE_DEVICE,
        ActionType.CREATE_GROUP,
        ActionType.RENAME_GROUP,
        ActionType.DELETE_GROUP,
    }
)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# -- the connection thread ---------------------------------------------------------------------

#: An operation for the store thread: the function, its caller's future and loop, and whether
#: its commit must be on disk before the caller hears of it (``OutboxStore._call``).
_Op = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop, bool]


def _connect(path: Path) -> tuple[sqlite3.Connection, FileIdentity, int]:
    """Open, migrate and check the outbox: the connection, the file's identity, the ledger's seq."""
    created = not path.exists()
    paths.create_private_file(path)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: cannot use write-ahead logging (journal mode {mode})")
        # FULL: a commit is on disk (the WAL fsynced) before the caller hears "queued".
        conn.execute("PRAGMA synchronous = FULL")
        seq = _migrate(conn, path, created=created)
        identity = file_identity(path)
        if identity is None:
            raise replaced_fault(path)
        record_ledger(path, seq)
    except BaseException:
        conn.close()
        raise
    return conn, identity, seq


def _migrate(conn: sqlite3.Connection, path: Path, *, created: bool = False) -> int:
    """Bring the schema up to date, set damaged rows aside, record lost actions; the ledger seq."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            current = 0
        else:
            current = int(row[0])
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{path}: the outbox was written by a newer fieldtui (schema {current}, "
                f"this version knows {SCHEMA_VERSION})",
                hint="upgrade fieldtui; the file was left untouched",
            )
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
        _set_aside_damaged(conn)
        seq = check_ledger(conn, path, created=created)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return seq


_TYPES_SQL = "(" + ", ".join(f"'{t.value}'" for t in ActionType) + ")"
_STATES_SQL = "(" + ", ".join(f"'{s.value}'" for s in ActionState) + ")"


def _json_object_sql(column: str) -> str:
    return f"(typeof({column}) = 'text' AND CASE WHEN json_valid({column}) THEN json_type({column}) END = 'object')"


def _set_aside_damaged(conn: sqlite3.Connection) -> int:
    """Move every row that cannot be read (parameters not JSON, unknown type) to ``damaged_actions``.

    One unreadable row must never stop ``outbox list`` or the sync of other devices. The row
    is kept, as it was, for whoever wants to look at it (``outbox list`` shows it as damaged).
    """
    readable = (
        f"typeof(id) = 'text' AND type IN {_TYPES_SQL} AND state IN {_STATES_SQL}"
        f" AND {_json_object_sql('params')} AND {_json_object_sql('precondition')}"
        f" AND (result IS NULL OR {_json_object_sql('result')})"
        " AND typeof(next_attempt_at) IN ('real', 'integer') AND typeof(created_at) IN ('real', 'integer')"
        " AND typeof(updated_at) IN ('real', 'integer')"
    )
    seqs = [row[0] for row in conn.execute(f"SELECT seq FROM actions WHERE NOT ({readable})")]
    for seq in seqs:
        _set_aside(conn, seq, "its stored data cannot be read")
    return len(seqs)


def _set_aside(conn: sqlite3.Connection, seq: int, reason: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO damaged_actions"
        " (seq, id, type, device, backend, state, params, precondition, reason, found_at)"
        " SELECT seq, id, type, device, backend, state, params, precondition, ?, ? FROM actions WHERE seq = ?",
        (reason, time.time(), seq),
    )
    conn.execute("DELETE FROM actions WHERE seq = ?", (seq,))
    log.warning("outbox: action #%s set aside as damaged: %s", seq, reason)


def _records(conn: sqlite3.Connection, rows: Iterable[sqlite3.Row]) -> list[ActionRecord]:
    """``rows`` as records; one that cannot be read is set aside as damaged, not a stop."""
    out = []
    for row in list(rows):
        try:
            out.append(_record(row))
        except (ValueError, KeyError, TypeError) as exc:
            _set_aside(conn, row["seq"], f"its stored data cannot be read ({type(exc).__name__})")
    return out


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class _StoreThread(threading.Thread):
    """Owns the connection; runs queued operations in batches, one transaction per batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="fieldtui-store", daemon=True)
        self.path = path
        self.ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self.ready: ThreadFuture[None] = ThreadFuture()
        self.identity: FileIdentity | None = None
        #: The highest sequence number written to the ledger by this process.
        self.ledger_seq = 0
        #: Whether the connection's commits are fsynced (``synchronous = FULL``, as ``_connect``
        #: leaves it) or only written to the WAL (``NORMAL``): chosen per batch.
        self.durable = True

    def run(self) -> None:
        try:
            conn, self.identity, self.ledger_seq = _connect(self.path)
        except StoreError as exc:
            self.ready.set_exception(exc)
            return
        except (sqlite3.Error, OSError) as exc:
            self.ready.set_exception(describe_fault(self.path, exc))
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the opener
            self.ready.set_exception(exc)
            return
        self.ready.set_result(None)
        try:
            stopping = False
            while not stopping:
                first = self.ops.get()
                if first is None:
                    break
                batch = [first]
                while True:
                    try:
                        nxt = self.ops.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    batch.append(nxt)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        # The file this session opened must still be the one at its path: a deleted or replaced
        # outbox would otherwise take changes into a file nobody will ever open again.
        if file_identity(self.path) != self.identity:
            outcomes = [(False, replaced_fault(self.path))] * len(batch)
        else:
            outcomes = self._transaction(conn, batch)
        for (_fn, future, loop, _durable), (ok, value) in zip(batch, outcomes, strict=True):
            try:
                loop.call_soon_threadsafe(_settle, future, ok, value)
            except RuntimeError:
                pass  # that caller's event loop is gone: nobody is waiting

    def _transaction(self, conn: sqlite3.Connection, batch: list[_Op]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        try:
            self._set_durability(conn, any(durable for _fn, _future, _loop, durable in batch))
            conn.execute("BEGIN IMMEDIATE")
            for fn, _future, _loop, _durable in batch:
                # A savepoint per operation: one refused operation does not undo the others.
                conn.execute("SAVEPOINT op")
                try:
                    value = fn(conn)
                except Exception as exc:  # noqa: BLE001 - handed to that operation's caller
                    failure: Exception = exc
                    if isinstance(exc, sqlite3.Error | OSError):
                        failure = describe_fault(self.path, exc, writing=True)
                    try:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                    except sqlite3.Error:
                        # SQLite ended the whole transaction (a full disk does): none of it stands.
                        with contextlib.suppress(sqlite3.Error):
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                        return [(False, failure)] * len(batch)
                    outcomes.append((False, failure))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return [(False, describe_fault(self.path, exc, writing=True))] * len(batch)
        try:
            self._advance_ledger(conn)
        except (sqlite3.Error, OSError) as exc:
            # Committed, but the ledger could not be raised: a later loss would go uncounted.
            log.warning("outbox: cannot update the ledger beside %s: %s", self.path, exc)
        return outcomes

    def _set_durability(self, conn: sqlite3.Connection, durable: bool) -> None:
        """``synchronous = FULL`` for a batch holding a durable operation (the WAL is fsynced at
        its commit), ``NORMAL`` otherwise (committed to the WAL, which survives the process being
        killed, and made durable by the next FULL commit or checkpoint: one fsync covers every
        frame written before it)."""
        if durable != self.durable:
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self.durable = durable

    def _advance_ledger(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'actions'").fetchone()
        seq = int(row[0]) if row is not None else 0
        if seq > self.ledger_seq:
            self.ledger_seq = record_ledger(self.path, seq)


# -- the store -------------------------------------------------------------------------------


class OutboxStore:
    """The outbox and the read cache in one SQLite file. Implements ``ReadCache``."""

    def __init__(self, path: Path, thread: _StoreThread) -> None:
        self.path = path
        self._thread = thread
        self._closed = False

    @classmethod
    async def open(cls, path: Path | None = None) -> Self:
        """Open (creating 0600 in a 0700 directory, migrating) the store at ``path``."""
        target = path if path is not None else paths.outbox_path()
        thread = _StoreThread(target)
        thread.start()
        await asyncio.wrap_future(thread.ready)
        return cls(target, thread)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._thread.ops.put(None)
        await asyncio.to_thread(self._thread.join)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run ``fn`` in the store's thread, in a transaction; returns once it is committed.

        ``durable``: the commit is on disk (fsynced) before this returns. Without it, the commit
        survives the process being killed but not the machine losing power until the next durable
        commit; only for changes whose loss such a crash cannot turn into a wrong outcome.
        """
        if self._closed:
            raise StoreError(f"{self.path}: the outbox is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._thread.ops.put((fn, future, loop, durable))
        return await future

    # -- writing actions ---------------------------------------------------------------------
    async def enqueue(self, action: Action) -> ActionRecord:
        """Commit ``action`` durably as ``queued``; returns once it is on disk."""
        return (await self.enqueue_many([action]))[0]

    async def enqueue_many(self, actions: Sequence[Action]) -> list[ActionRecord]:
        """Commit ``actions`` durably as ``queued``; a storage fault refuses them all, clearly."""

        def op(conn: sqlite3.Connection) -> list[ActionRecord]:
            now = time.time()
            out = []
            for action in actions:
                conn.execute(
                    "INSERT INTO actions (id, type, device, backend, queue_key, params, precondition,"
                    " state, next_attempt_at, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (
                        action.id,
                        action.type.value,
                        action.device,
                        action.backend,
                        action.queue_key,
                        _dumps(action.params),
                        _dumps(action.precondition),
                        now,
                        _ts(action.created_at),
                        now,
                    ),
                )
                out.append(_get(conn, action.id))
            return out

        return await self._call(op)

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        now: float | None = None,
        exclude_keys: Collection[str] = (),
        exclude_backends: Collection[str] = (),
    ) -> list[Claimed]:
        """Lease up to ``limit`` actions that are at the head of their queue and due.

        A head is the oldest open action of its queue key; it is claimable when it is queued
        and due, or ``sending`` under an expired lease (its sender died: it will be checked),
        and no earlier pending action of another queue touches the same group on its backend
        (``_depends_sql``: a move into a group waits for that group's creation).
        """
        keys = tuple(exclude_keys)
        backends = tuple(exclude_backends)

        def op(conn: sqlite3.Connection) -> list[Claimed]:
            t = time.time() if now is None else now
            _expire_dead_owners(conn, owner, t)
            where = [
                "((a.state = 'queued' AND a.next_attempt_at <= ?) OR (a.state = 'sending' AND a.lease_until < ?))"
            ]
            args: list[Any] = [t, t]
            if keys:
                where.append(f"a.queue_key NOT IN ({','.join('?' * len(keys))})")
                args.extend(keys)
            if backends:
                where.append(f"(a.backend IS NULL OR a.backend NOT IN ({','.join('?' * len(backends))}))")
                args.extend(backends)
            pending = _PendingGroups(conn)
            rows: list[sqlite3.Row] = []
            heads = conn.execute(
                f"SELECT {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))}"
                f" FROM ({_HEADS_SQL}) AS h"
                " JOIN actions AS a ON a.seq = h.seq"
                f" WHERE {' AND '.join(where)} ORDER BY a.seq",
                args,
            )
            unreadable: list[int] = []
            try:
                for row in heads:
                    try:
                        held = pending.holds(row)
                    except (ValueError, KeyError, TypeError):
                        unreadable.append(row["seq"])
                        continue
                    if not held:
                        rows.append(row)
                        if len(rows) >= limit:
                            break
            finally:
                heads.close()  # read to the end or not, before the updates below
            for seq in unreadable:
                _set_aside(conn, seq, "its stored data cannot be read")
            claimed = []
            for before in _records(conn, rows):
                conn.execute(
                    "UPDATE actions SET state = 'sending', lease_owner = ?, lease_until = ?,"
                    " attempts = attempts + 1, uncertain = 1, updated_at = ?,"
                    " first_sent_at = COALESCE(first_sent_at, ?) WHERE seq = ?",
                    (owner, t + lease_seconds, t, t, before.seq),
                )
                needs_check = before.uncertain or before.state is ActionState.SENDING
                claimed.append(
                    Claimed(
                        record=_get(conn, before.id),
                        needs_check=needs_check,
                        interrupted=before.state is ActionState.SENDING,
                        previous_update=before.updated_at,
                    )
                )
            return claimed

        return await self._call(op)

    async def renew(self, owner: str, ids: Collection[str], lease_seconds: float) -> int:
        """Extend this owner's leases on ``ids``; returns how many it still holds."""
        id_list = tuple(ids)
        if not id_list:
            return 0

        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE actions SET lease_until = ? WHERE state = 'sending' AND lease_owner = ?"
                f" AND id IN ({','.join('?' * len(id_list))})",
                (time.time() + lease_seconds, owner, *id_list),
            )
            return cur.rowcount

        return await self._call(op, durable=False)  # a lease outlives no power loss anyway

    async def claim_passing(
        self, owner: str, held_id: str, types: Collection[ActionType], *, lease_seconds: float
    ) -> list[Claimed]:
        """Lease the due, queued actions of ``types`` that wait in the same queue behind the held
        ``held_id`` (and behind nothing else but other held actions of its type).

        The one exception to "in order per device": a task creation held by a quota (DeviceHQ's
        25 unfinished tasks) lets a cancel or delete of the same device pass, since that is what
        makes room for it; waiting behind it would wait forever.
        """
        wanted = {t.value for t in types}

        def op(conn: sqlite3.Connection) -> list[Claimed]:
            t = time.time()
            held = _get(conn, held_id)
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM actions WHERE queue_key = ? AND seq > ? AND state IN {_OPEN_SQL}"
                " ORDER BY seq",
                (held.queue_key, held.seq),
            ).fetchall()
            claimed: list[Claimed] = []
            for row in rows:
                before = _record(row)
                if before.action.type is held.action.type and before.state is ActionState.QUEUED:
                    continue  # another held creation: passed over the same way
                if before.action.type.value not in wanted or before.state is not ActionState.QUEUED:
                    break
                if before.next_attempt_at.timestamp() > t:
                    break
                conn.execute(
                    "UPDATE actions SET state = 'sending', lease_owner = ?, lease_until = ?,"
                    " attempts = attempts + 1, uncertain = 1, updated_at = ?,"
                    " first_sent_at = COALESCE(first_sent_at, ?) WHERE seq = ?",
                    (owner, t + lease_seconds, t, t, before.seq),
                )
                claimed.append(
                    Claimed(
                        record=_get(conn, before.id),
                        needs_check=before.uncertain,
                        interrupted=False,
                        previous_update=before.updated_at,
                    )
                )
            return claimed

        return await self._call(op)

    async def confirm_lease(self, owner: str, action_id: str, lease_seconds: float) -> ActionRecord | None:
        """Right before a change request: None when ``owner`` no longer holds the action (another
        process took it over); else the lease is renewed and ``updated_at`` marks the moment the
        request leaves (what a later claimer waits a request timeout from, should we die)."""
        # Not fsynced: this commit only guards against another process (its BEGIN IMMEDIATE is
        # what excludes a takeover, whatever the durability) and renews the lease. The durable
        # point before the request is the claim (``sending``, ``uncertain``), whose commit is
        # fsynced; a machine that loses power before the next durable commit also loses every
        # request this one would have timed, and its claimer checks the cloud first either way.
        return await self._transition(
            owner, action_id, "lease_until = ?", (time.time() + lease_seconds,), durable=False
        )

    async def _transition(
        self, owner: str, action_id: str, sql: str, args: Sequence[Any], *, durable: bool = True
    ) -> ActionRecord | None:
        """Apply ``sql`` (``SET ...``) only while ``owner`` holds the lease; None if it does not."""

        def op(conn: sqlite3.Connection) -> ActionRecord | None:
            cur = conn.execute(
                f"UPDATE actions SET {sql}, updated_at = ? WHERE id = ? AND state = 'sending' AND lease_owner = ?",
                (*args, time.time(), action_id, owner),
            )
            return _get(conn, action_id) if cur.rowcount == 1 else None

        return await self._call(op, durable=durable)

    async def complete(
        self, owner: str, action_id: str, result: dict[str, Any] | None = None
    ) -> ActionRecord | None:
        return await self._transition(
            owner,
            action_id,
            "state = 'done', done_at = ?, lease_owner = NULL, lease_until = NULL, uncertain = 0,"
            " last_error = NULL, result = ?",
            (time.time(), _dumps(result or {})),
        )

    async def settle_failed(
        self,
        owner: str,
        action_id: str,
        message: str,
        *,
        state: ActionState = ActionState.FAILED,
        uncertain: bool = False,
    ) -> ActionRecord | None:
        """End as ``failed`` (the server refused) or ``conflict`` (the device changed under us)."""
        if state not in (ActionState.FAILED, ActionState.CONFLICT):
            raise ValueError(f"not a failure state: {state}")
        return await self._transition(
            owner,
            action_id,
            "state = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, uncertain = ?",
            (state.value, message, int(uncertain)),
        )

    async def reschedule(
        self, owner: str, action_id: str, *, delay: float, message: str, uncertain: bool
    ) -> ActionRecord | None:
        """Back to ``queued``, due in ``delay`` seconds (transient error or a held quota)."""
        return await self._transition(
            owner,
            action_id,
            "state = 'queued', next_attempt_at = ?, last_error = ?, uncertain = ?,"
            " lease_owner = NULL, lease_until = NULL",
            (time.time() + delay, message, int(uncertain)),
            # Not fsynced: lost with the machine's power, the action is back as the claim left it
            # on disk (``sending``, ``uncertain``), which the next claimer checks before sending.
            durable=False,
        )

    async def release(self, owner: str, action_id: str, *, uncertain: bool) -> ActionRecord | None:
        """Give a claimed action back without counting an attempt (not sent, or interrupted)."""
        return await self._transition(
            owner,
            action_id,
            "state = 'queued', attempts = MAX(attempts - 1, 0), uncertain = ?,"
            " lease_owner = NULL, lease_until = NULL",
            (int(uncertain),),
        )

    async def bind_backend(self, owner: str, action_id: str, backend: str) -> ActionRecord | None:
        """Record which cloud a device belongs to (resolved at sync time)."""
        return await self._transition(owner, action_id, "backend = ?", (backend,))

    async def make_due(self) -> int:
        """Make every queued action due now (the technician pressed "sync now")."""

        def op(conn: sqlite3.Connection) -> int:
            now = time.time()
            cur = conn.execute(
                "UPDATE actions SET next_attempt_at = ?, updated_at = ? WHERE state = 'queued' AND next_attempt_at > ?",
                (now, now, now),
            )
            return cur.rowcount

        return await self._call(op)

    # -- the technician's decisions -----------------------------------------------------------
    async def resolve_id(self, prefix: str) -> str:
        """The full id of the one action whose id starts with ``prefix``."""

        def op(conn: sqlite3.Connection) -> str:
            return _resolve(conn, prefix)

        return await self._call(op)

    async def retry(self, action_id: str) -> ActionRecord:
        """Queue a failed or conflicting action again (due now); a conflict is then sent as is."""

        def op(conn: sqlite3.Connection) -> ActionRecord:
            full = _resolve(conn, action_id)
            record = _get(conn, full)
            if record.state not in (ActionState.FAILED, ActionState.CONFLICT, ActionState.QUEUED):
                raise StoreError(
                    f"action {full} is {record.state.value}: only failed, conflicting or "
                    "queued actions can be retried"
                )
            extra = ", precondition = '{}'" if record.state is ActionState.CONFLICT else ""
            conn.execute(
                f"UPDATE actions SET state = 'queued', next_attempt_at = ?, updated_at = ?{extra} WHERE id = ?",
                (time.time(), time.time(), full),
            )
            return _get(conn, full)

        return await self._call(op)

    async def drop(self, action_id: str) -> ActionRecord:
        """Cancel an action that has not been sent (queued, failed or conflicting)."""

        def op(conn: sqlite3.Connection) -> ActionRecord:
            full = _resolve(conn, action_id)
            record = _get(conn, full)
            if record.state is ActionState.SENDING:
                raise StoreError(
                    f"action {full} is being sent (or was interrupted while sending): "
                    "run `fieldtui outbox sync` first"
                )
            if record.state not in (ActionState.FAILED, ActionState.CONFLICT, ActionState.QUEUED):
                raise StoreError(f"action {full} is already {record.state.value}")
            conn.execute(
                "UPDATE actions SET state = 'cancelled', done_at = ?, updated_at = ? WHERE id = ?",
                (time.time(), time.time(), full),
            )
            return _get(conn, full)

        return await self._call(op)

    # -- reading actions ------------------------------------------------------------------------
    async def get(self, action_id: str) -> ActionRecord | None:
        def op(conn: sqlite3.Connection) -> ActionRecord | None:
            try:
                return _get(conn, action_id)
            except StoreError:
                return None

        return await self._call(op)

    async def list_actions(
        self, states: Iterable[ActionState] | None = None, *, limit: int | None = None
    ) -> list[ActionRecord]:
        """Actions in queue order (oldest first), optionally only in ``states``."""
        wanted = tuple(s.value for s in states) if states is not None else None

        def op(conn: sqlite3.Connection) -> list[ActionRecord]:
            sql = f"SELECT {_COLUMNS} FROM actions"
            args: list[Any] = []
            if wanted is not None:
                sql += f" WHERE state IN ({','.join('?' * len(wanted))})"
                args.extend(wanted)
            sql += " ORDER BY seq"
            if limit is not None:
                sql += " LIMIT ?"
                args.append(limit)
            return _records(conn, conn.execute(sql, args))

        return await self._call(op)

    async def list_recent(self, finished: int = 20) -> list[ActionRecord]:
        """Every open action, and the last ``finished`` done or cancelled ones, in queue order."""

        def op(conn: sqlite3.Connection) -> list[ActionRecord]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM actions WHERE state IN {_OPEN_SQL}"
                f" UNION ALL SELECT * FROM (SELECT {_COLUMNS} FROM actions"
                "  WHERE state IN ('done', 'cancelled') ORDER BY seq DESC LIMIT ?)",
                (finished,),
            ).fetchall()
            return sorted(_records(conn, rows), key=lambda r: r.seq)

        return await self._call(op)

    async def open_before(self, queue_key: str, seq: int | None = None) -> list[ActionRecord]:
        """Open actions of ``queue_key`` (older than ``seq`` when given), oldest first."""

        def op(conn: sqlite3.Connection) -> list[ActionRecord]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM actions WHERE queue_key = ? AND state IN {_OPEN_SQL}"
                " AND seq < ? ORDER BY seq",
                (queue_key, seq if seq is not None else 2**62),
            )
            return _records(conn, rows)

        return await self._call(op)

    async def held_by(self, action_id: str) -> list[ActionRecord]:
        """What an action waits for, oldest first: the open actions before it in its own queue
        and the pending ones of other queues that touch the same group (see ``claim``)."""

        def op(conn: sqlite3.Connection) -> list[ActionRecord]:
            rows = conn.execute(
                f"SELECT {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))}"
                " FROM actions AS a JOIN actions AS d ON d.seq < a.seq"
                f" WHERE a.id = ? AND ((d.queue_key = a.queue_key AND d.state IN {_OPEN_SQL})"
                f" OR ({_depends_sql()})) ORDER BY d.seq",
                (action_id,),
            )
            return _records(conn, rows)

        return await self._call(op)

    async def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: changes when ANOTHER connection (another process,
        ``fieldtui move`` in a shell) committed to the file since the last look; this store's
        own commits leave it alone. One cheap query: the sync engine polls it."""

        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        return await self._call(op)

    async def losses(self) -> list[Loss]:
        """Actions found lost when the outbox was opened (a lost write-ahead log, a deleted file)."""
        return await self._call(losses)

    async def damaged(self) -> list[DamagedRow]:
        """Rows set aside because they could not be read, oldest first."""
        return await self._call(_damaged_rows)

    async def counts(self) -> dict[ActionState, int]:
        def op(conn: sqlite3.Connection) -> dict[ActionState, int]:
            rows = conn.execute("SELECT state, COUNT(*) FROM actions GROUP BY state")
            return {ActionState(state): n for state, n in rows}

        return await self._call(op)

    async def next_due(self, *, exclude_backends: Collection[str] = ()) -> datetime | None:
        """When ``claim`` next has something to take (None: nothing will be, until woken).

        Only heads of their queues count (an action behind a failed one is not due, however
        old), not those waiting for another queue's pending group action, nor those on
        ``exclude_backends`` (offline: their coming back wakes the engine), so an engine
        waiting on them sleeps instead of claiming in a loop. A ``sending`` head counts at its
        lease's end: a sender that died is then taken over without anyone waking us.
        """
        backends = tuple(exclude_backends)

        def op(conn: sqlite3.Connection) -> datetime | None:
            where = "a.state IN ('queued', 'sending')"
            if backends:
                where += f" AND (a.backend IS NULL OR a.backend NOT IN ({','.join('?' * len(backends))}))"
            pending = _PendingGroups(conn)
            rows = conn.execute(
                "SELECT a.seq, a.type, a.device, a.backend, a.params,"
                " CASE a.state WHEN 'queued' THEN a.next_attempt_at ELSE a.lease_until END AS due"
                f" FROM ({_HEADS_SQL}) AS h"
                f" JOIN actions AS a ON a.seq = h.seq WHERE {where} ORDER BY due",
                backends,
            )
            try:
                for row in rows:
                    if row["due"] is not None and not pending.holds(row):
                        return _dt(row["due"])
            finally:
                rows.close()
            return None

        return await self._call(op)

    async def task_ids_claimed(self, backend: str, device: str, exclude: str) -> set[str]:
        """Task ids other done actions created on ``device`` (so a check does not take them)."""

        def op(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(
                "SELECT result FROM actions WHERE backend = ? AND device = ? AND state = 'done'"
                " AND id != ? AND result IS NOT NULL",
                (backend, device, exclude),
            )
            found = set()
            for (text,) in rows:
                value = json.loads(text).get("created_id")
                if value is not None:
                    found.add(str(value))
            return found

        return await self._call(op)

    # -- the read cache (ReadCache) --------------------------------------------------------------
    async def store_devices(self, devices: Sequence[Device], fetched_at: datetime) -> None:
        rows = [(d.backend, d.id, d.name, d.model_dump_json(), _ts(fetched_at)) for d in devices]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO cache_devices (backend, id, name, data, fetched_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

        await self._call(op, durable=False)  # the read cache: asked of the clouds again if lost

    async def forget_device(self, backend: str, device_id: str) -> None:
        """Drop the cached copies of a device its cloud no longer holds (a delete applied)."""

        def op(conn: sqlite3.Connection) -> None:
            for table, column in (
                ("cache_devices", "id"),
                ("cache_tasks", "device"),
                ("cache_history", "device"),
            ):
                conn.execute(f"DELETE FROM {table} WHERE backend = ? AND {column} = ?", (backend, device_id))

        await self._call(op)

    async def cached_device(self, device_id: str) -> list[Cached[Device]]:
        def op(conn: sqlite3.Connection) -> list[Cached[Device]]:
            rows = conn.execute(
                "SELECT backend, data, fetched_at FROM cache_devices WHERE id = ? ORDER BY backend",
                (device_id,),
            )
            return [_cached(Device.model_validate_json(data), backend, at) for backend, data, at in rows]

        return await self._call(op)

    async def search_devices(self, query: str, limit: int) -> list[Cached[Device]]:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def op(conn: sqlite3.Connection) -> list[Cached[Device]]:
            rows = conn.execute(
                "SELECT backend, data, fetched_at FROM cache_devices"
                " WHERE lower(id) LIKE ? ESCAPE '\\' OR lower(COALESCE(name, '')) LIKE ? ESCAPE '\\'"
                " ORDER BY id, backend LIMIT ?",
                (pattern, pattern, limit),
            )
            return [_cached(Device.model_validate_json(data), backend, at) for backend, data, at in rows]

        return await self._call(op)

    async def cached_device_page(
        self, after: tuple[str, str] | None = None, limit: int = 5000
    ) -> list[tuple[str, str, str, float]]:
        """One page of the cached devices, in (id, backend) order: those after the key ``after``.

        Rows are ``(id, backend, data, fetched_at)``: ``data`` is the Device's JSON without its
        vendor payload (``raw`` is most of each row and a listing never shows it), ``fetched_at``
        epoch seconds. Fewer than ``limit`` rows: the last page. Pass the last row's
        ``(id, backend)`` as ``after`` for the next one.
        """
        where, args = ("WHERE (id, backend) > (?, ?) ", (*after, limit)) if after else ("", (limit,))

        def op(conn: sqlite3.Connection) -> list[tuple[str, str, str, float]]:
            rows = conn.execute(
                "SELECT id, backend, json_remove(data, '$.raw'), fetched_at FROM cache_devices "
                f"{where}ORDER BY id, backend LIMIT ?",
                args,
            )
            return [(str(i), str(b), str(d), float(at)) for i, b, d, at in rows]

        return await self._call(op)

    async def store_tasks(
        self, backend: str, device_id: str, tasks: Sequence[Task], fetched_at: datetime
    ) -> None:
        data = _dumps([t.model_dump(mode="json") for t in tasks])
        await self._put("cache_tasks", (backend, device_id, data, _ts(fetched_at)))

    async def cached_tasks(self, device_id: str) -> list[Cached[list[Task]]]:
        rows = await self._rows(
            "SELECT backend, data, fetched_at FROM cache_tasks WHERE device = ?", (device_id,)
        )
        return [_cached([Task.model_validate(t) for t in json.loads(data)], b, at) for b, data, at in rows]

    async def store_groups(self, backend: str, groups: Sequence[Group], fetched_at: datetime) -> None:
        data = _dumps([g.model_dump(mode="json") for g in groups])
        await self._put("cache_groups", (backend, data, _ts(fetched_at)))

    async def cached_groups(self, backend: str) -> Cached[list[Group]] | None:
        rows = await self._rows(
            "SELECT backend, data, fetched_at FROM cache_groups WHERE backend = ?", (backend,)
        )
        for b, data, at in rows:
            return _cached([Group.model_validate(g) for g in json.loads(data)], b, at)
        return None

    async def store_history(
        self, backend: str, device_id: str, history: Sequence[InstallationRecord], fetched_at: datetime
    ) -> None:
        data = _dumps([h.model_dump(mode="json") for h in history])
        await self._put("cache_history", (backend, device_id, data, _ts(fetched_at)))

    async def cached_history(self, device_id: str) -> list[Cached[list[InstallationRecord]]]:
        rows = await self._rows(
            "SELECT backend, data, fetched_at FROM cache_history WHERE device = ?", (device_id,)
        )
        return [
            _cached([InstallationRecord.model_validate(h) for h in json.loads(data)], b, at)
            for b, data, at in rows
        ]

    async def _put(self, table: str, row: tuple[Any, ...]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT OR REPLACE INTO {table} VALUES ({','.join('?' * len(row))})", row)

        await self._call(op, durable=False)  # the read cache: asked of the clouds again if lost

    async def _rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        def op(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in conn.execute(sql, args)]

        return await self._call(op)


class DamagedRow(BaseModel):
    """An outbox row that could not be read, as much of it as could be."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    seq: int
    id: str
    type: str
    device: str | None
    backend: str | None
    #: The state it was in; it is ``damaged`` now (never sent again, shown until dealt with).
    was: str
    reason: str

    def line(self) -> str:
        what = f"{self.type} {self.device or ''}".strip()
        return (
            f"{self.id[:8]:<8}  damaged   {self.backend or '(any)':<10} {what}  (was {self.was}; "
            f"{self.reason}: set aside, never sent)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "type": self.type,
            "device": self.device,
            "backend": self.backend,
            "state": "damaged",
            "was": self.was,
            "reason": self.reason,
        }


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _damaged_rows(conn: sqlite3.Connection) -> list[DamagedRow]:
    rows = conn.execute(
        "SELECT seq, id, type, device, backend, state, reason FROM damaged_actions ORDER BY seq"
    ).fetchall()
    return [
        DamagedRow(
            seq=int(seq),
            id=_text(ident) or f"#{seq}",
            type=_text(kind) or "?",
            device=_text(device) or None,
            backend=_text(backend) or None,
            was=_text(state) or "?",
            reason=_text(reason),
        )
        for seq, ident, kind, device, backend, state, reason in rows
    ]


@dataclass(frozen=True, slots=True)
class Salvage:
    """What ``outbox list`` could read from an outbox file the store cannot open."""

    records: list[ActionRecord]
    damaged: list[DamagedRow]
    losses: list[Loss]
    #: What the reading may miss, in words (None: nothing known).
    note: str | None


def salvage(path: Path) -> Salvage:
    """Read, without writing anything, every action row of ``path`` that can still be read.

    For ``outbox list`` when the outbox cannot be opened normally (read-only, damaged, a full
    disk): a row that cannot be read is reported as damaged instead of hiding all the others.
    Raises ``OSError`` / ``sqlite3.Error`` when nothing at all can be read.
    """
    conn, note = open_for_salvage(path)
    try:
        records: list[ActionRecord] = []
        damaged: list[DamagedRow] = []
        try:
            rows: Iterable[sqlite3.Row] = conn.execute(
                f"SELECT {_COLUMNS} FROM actions ORDER BY seq"
            ).fetchall()
        except sqlite3.Error:
            # Some pages are damaged: read row by row, keeping every one that still reads.
            top = 0
            with contextlib.suppress(sqlite3.Error):
                top = int(
                    conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'actions'").fetchone()[0]
                )
            one_by_one: list[sqlite3.Row] = []
            for seq in range(1, min(top, 200_000) + 1):
                try:
                    found = conn.execute(f"SELECT {_COLUMNS} FROM actions WHERE seq = ?", (seq,)).fetchone()
                except sqlite3.Error as exc:
                    damaged.append(
                        DamagedRow(
                            seq=seq,
                            id=f"#{seq}",
                            type="?",
                            device=None,
                            backend=None,
                            was="?",
                            reason=str(exc),
                        )
                    )
                    continue
                if found is not None:
                    one_by_one.append(found)
            rows = one_by_one
        for row in rows:
            try:
                records.append(_record(row))
            except (ValueError, KeyError, TypeError) as exc:
                damaged.append(
                    DamagedRow(
                        seq=int(row["seq"]),
                        id=_text(row["id"]) or f"#{row['seq']}",
                        type=_text(row["type"]) or "?",
                        device=_text(row["device"]) or None,
                        backend=_text(row["backend"]) or None,
                        was=_text(row["state"]) or "?",
                        reason=f"its stored data cannot be read ({type(exc).__name__})",
                    )
                )
        with contextlib.suppress(sqlite3.Error):  # an older schema, or those pages damaged too
            damaged.extend(_damaged_rows(conn))
        lost: list[Loss] = []
        with contextlib.suppress(sqlite3.Error):
            lost = losses(conn)
        return Salvage(records=records, damaged=sorted(damaged, key=lambda d: d.seq), losses=lost, note=note)
    finally:
        conn.close()


def _cached(value: T, backend: str, fetched_at: float) -> Cached[T]:
    return Cached[T](value=value, backend=backend, fetched_at=datetime.fromtimestamp(fetched_at, UTC))


def _get(conn: sqlite3.Connection, action_id: str) -> ActionRecord:
    row = conn.execute(f"SELECT {_COLUMNS} FROM actions WHERE id = ?", (action_id,)).fetchone()
    if row is None:
        raise StoreError(f"no action {action_id} in the outbox")
    return _record(row)


def _resolve(conn: sqlite3.Connection, prefix: str) -> str:
    cleaned = prefix.strip().lower()
    if not cleaned or not all(c in "0123456789abcdef" for c in cleaned):
        raise StoreError(f"{prefix!r} is not an action id (see `fieldtui outbox list`)")
    rows = conn.execute(
        "SELECT id FROM actions WHERE id >= ? AND id < ? LIMIT 2", (cleaned, cleaned + "g")
    ).fetchall()
    if not rows:
        raise StoreError(f"no action {prefix} in the outbox (see `fieldtui outbox list`)")
    if len(rows) > 1:
        raise StoreError(f"{prefix} matches more than one action: give more of its id")
    return str(rows[0][0])


def _expire_dead_owners(conn: sqlite3.Connection, owner: str, now: float) -> None:
    """Expire leases whose holder, a process on this machine, has died (crash, kill -9)."""
    rows = conn.execute(
        "SELECT DISTINCT lease_owner FROM actions WHERE state = 'sending' AND lease_until >= ? AND lease_owner != ?",
        (now, owner),
    ).fetchall()
    for (other,) in rows:
        if other and _owner_is_dead(other):
            conn.execute(
                "UPDATE actions SET lease_until = 0 WHERE state = 'sending' AND lease_owner = ?", (other,)
            )
