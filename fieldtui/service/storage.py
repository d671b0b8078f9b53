"""What can go wrong with the outbox file itself, said so a technician can act on it.

- :func:`describe_fault` turns an ``OSError`` or ``sqlite3.Error`` into a :class:`StorageFault`
  that names the file and what to do (damaged, disk full, read-only, a directory in its place).
- :func:`file_identity` is the (device, inode) pair checked before every write: a file deleted
  or replaced under a running session is refused, never written to as if nothing happened.
- The ledger (``<outbox>-ledger``, beside the file) holds the highest action sequence number
  ever committed, written and fsynced after each commit that queued something. A write-ahead log
  lost or damaged after a crash, or an outbox file deleted, takes commits with it but not the
  ledger: :func:`check_ledger` compares the two on open and says how many actions were lost.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fieldtui.core.errors import ConfigError, FieldtuiError


class StoreError(FieldtuiError):
    """The outbox refused an operation (unknown id, wrong state) or the file is unusable."""


class StorageFault(StoreError, ConfigError):
    """The outbox file cannot be used as it is (damaged, full, read-only, deleted, a directory).

    A ``ConfigError`` too: like a broken config file, the fix is on this machine, not in the
    code, so every command exits 2 with this message instead of "unexpected error".
    """


FileIdentity = tuple[int, int]


def file_identity(path: Path) -> FileIdentity | None:
    """(device, inode) of ``path``; None when it no longer exists."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def replaced_fault(path: Path) -> StorageFault:
    return StorageFault(
        f"{path}: the outbox file was deleted or replaced while fieldtui was running, "
        "so this change is NOT queued",
        hint="quit fieldtui and start it again (it opens the outbox that is there now and "
        "reports any lost actions), then make the change again",
    )


_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def describe_fault(path: Path, exc: BaseException, *, writing: bool = False) -> StorageFault:
    """The storage error ``exc`` met on ``path`` as one message naming the file and the fix."""
    not_queued = "; this change is NOT queued" if writing else "; no change can be queued until this is fixed"
    name = getattr(exc, "sqlite_errorname", "") or ""
    if isinstance(exc, IsADirectoryError) or (path.is_dir() and not isinstance(exc, NotADirectoryError)):
        return StorageFault(
            f"{path} is a directory, not the outbox file",
            hint=f"move it out of the way (mv {path} {path}.moved) or set FIELDTUI_DATA_DIR to "
            "another folder; fieldtui then creates a new outbox",
        )
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return StorageFault(
            f"{path.parent} (the folder for the outbox) is not a folder",
            hint="move that file out of the way or set FIELDTUI_DATA_DIR to another folder",
        )
    code = exc.errno if isinstance(exc, OSError) else None
    if name == "SQLITE_FULL" or code in _FULL or name.startswith("SQLITE_IOERR"):
        return StorageFault(
            f"{path}: cannot write the outbox: the disk is full or failing ({exc}){not_queued}",
            hint="free some space on that disk (or check it) and try again",
        )
    if (
        name in ("SQLITE_READONLY", "SQLITE_CANTOPEN")
        or name.startswith("SQLITE_READONLY")
        or code in _DENIED
    ):
        return StorageFault(
            f"{path}: the outbox is read-only for this user ({exc}){not_queued}",
            hint="make the file and its folder writable (check owner and permissions, or a "
            "read-only disk); `fieldtui outbox list` still shows what it holds",
        )
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or isinstance(exc, sqlite3.DatabaseError):
        return StorageFault(
            f"{path}: the outbox file is damaged ({exc})",
            hint="`fieldtui outbox list` shows what can still be read; then move the file aside "
            f"(mv {path} {path}.damaged) and fieldtui starts a new, empty outbox",
        )
    return StorageFault(f"{path}: cannot use the outbox ({type(exc).__name__}: {exc})")


# -- the ledger ------------------------------------------------------------------------------


def ledger_path(path: Path) -> Path:
    return path.with_name(path.name + "-ledger")


def _read(fd: int) -> int:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


def read_ledger(path: Path) -> int:
    """The highest sequence number the ledger says was committed (0: no ledger yet)."""
    try:
        with ledger_path(path).open("rb") as handle:
            text = handle.read(64).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0


def record_ledger(path: Path, seq: int) -> int:
    """Raise the ledger to ``seq`` (never lower it: another process may be ahead); durable."""
    target = ledger_path(path)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        current = _read(fd)
        if seq <= current:
            return current
        data = f"{seq}\n".encode()
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
        return seq
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Loss:
    """Actions that were committed to the outbox once and are not in it any more."""

    first_seq: int
    last_seq: int
    cause: str
    found_at: datetime

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1

    def message(self) -> str:
        when = self.found_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        plural = "change was" if self.count == 1 else "changes were"
        return (
            f"LOST: {self.count} queued {plural} lost from the outbox ({self.cause}; found "
            f"{when}). fieldtui cannot tell what they were or whether they were sent: check the "
            "devices you changed recently and make those changes again"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "cause": self.cause,
            "found_at": self.found_at.isoformat(),
        }


def check_ledger(conn: sqlite3.Connection, path: Path, *, created: bool) -> int:
    """Compare the ledger with the file; record any loss in ``outbox_losses``. Inside a transaction.

    Returns the sequence number the ledger should now hold. ``created``: the file did not
    exist before this open (so a ledger ahead of it means the outbox file itself was lost).
    """
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'actions'").fetchone()
    have = int(row[0]) if row is not None else 0
    ledger = read_ledger(path)
    if ledger <= have:
        return have
    cause = (
        "the outbox file was deleted or replaced"
        if created
        else "its write-ahead log (-wal) was lost or damaged after a crash"
    )
    now = datetime.now(UTC).timestamp()
    conn.execute(
        "INSERT INTO outbox_losses (first_seq, last_seq, cause, found_at) VALUES (?, ?, ?, ?)",
        (have + 1, ledger, cause, now),
    )
    # New actions get new numbers: the lost ones' numbers are never reused.
    if row is None:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('actions', ?)", (ledger,))
    else:
        conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'actions'", (ledger,))
    return ledger


def losses(conn: sqlite3.Connection) -> list[Loss]:
    rows = conn.execute(
        "SELECT first_seq, last_seq, cause, found_at FROM outbox_losses ORDER BY found_at"
    ).fetchall()
    return [Loss(int(a), int(b), str(c), datetime.fromtimestamp(float(t), UTC)) for a, b, c, t in rows]


# -- reading what can be read ---------------------------------------------------------------


def open_for_salvage(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """A read-only connection to a file the store cannot open, and a note on what it may miss."""
    if not path.is_file():
        raise FileNotFoundError(path)
    attempts = (
        (f"file:{path}?mode=ro", None),
        # A read-only folder: no -shm can be made; read the main file alone.
        (f"file:{path}?immutable=1", "read from the main file only: the latest changes may not show"),
    )
    last: BaseException | None = None
    for uri, note in attempts:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            last = exc
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            continue
        conn.row_factory = sqlite3.Row
        return conn, note
    assert last is not None
    raise last
