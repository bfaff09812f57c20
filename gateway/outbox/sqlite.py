"""The embedded default's job store: one SQLite file (``var/outbox.sqlite3``).

Durable (WAL, ``synchronous=FULL``: a job acknowledged as kept survives a
crash) and atomic (every change one transaction, ``BEGIN IMMEDIATE``, so two
processes on the same file never take the same job). SQLite blocks, so
every call runs in a worker thread, one at a time, off the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway.outbox.jobs import Job, decode_payload, encode_payload
from gateway.outbox.store import DeadLetter, Stats, StoreUnavailable

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  key TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at REAL NOT NULL,
  due_at REAL NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',
  token TEXT NOT NULL DEFAULT '',
  -- 'ready' (waiting or leased), 'dead', or 'done' (kept a while for idempotency)
  state TEXT NOT NULL DEFAULT 'ready',
  settled_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, due_at);
"""


class SqliteStore:
    def __init__(self, path: Path, done_seconds: float = 7 * 86400) -> None:
        self.path = path
        self.done_seconds = done_seconds
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: each method opens its own transaction.
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                db = self._connect()
                try:
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        result = work(db)
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
                    return result
                except sqlite3.Error as exc:
                    raise StoreUnavailable(f"outbox file {self.path}: {exc}") from exc

        return await asyncio.to_thread(locked)

    async def put(self, job: Job) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            # A done job past its keeping time no longer blocks its key.
            db.execute(
                "DELETE FROM jobs WHERE key = ? AND state = 'done' AND settled_at < ?",
                (job.key, job.created_at - self.done_seconds),
            )
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (key, kind, payload, created_at, due_at) VALUES (?, ?, ?, ?, ?)",
                (job.key, job.kind, encode_payload(job.payload), job.created_at, job.due_at),
            )
            return cursor.rowcount == 1

        return await self._run(work)

    async def take(self, now: float, lease_seconds: float, token: str) -> Job | None:
        def work(db: sqlite3.Connection) -> Job | None:
            row = db.execute(
                "UPDATE jobs SET due_at = ?, token = ? WHERE key = ("
                "  SELECT key FROM jobs WHERE state = 'ready' AND due_at <= ? ORDER BY due_at LIMIT 1"
                ") RETURNING key, kind, payload, created_at, due_at, attempts, reason, token",
                (now + lease_seconds, token, now),
            ).fetchone()
            if row is None:
                return None
            return Job(row[0], row[1], decode_payload(row[2]), row[3], row[4], row[5], row[6], row[7])

        return await self._run(work)

    async def renew(self, job: Job, lease_end: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE jobs SET due_at = ? WHERE key = ? AND token = ? AND state = 'ready'",
                (lease_end, job.key, job.token),
            )
            return cursor.rowcount == 1

        return await self._run(work)

    async def complete(self, job: Job, now: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE jobs SET state = 'done', settled_at = ?, payload = '{}', token = '' "
                "WHERE key = ? AND token = ? AND state = 'ready'",
                (now, job.key, job.token),
            )
            # Forget what was done long ago, now and then (here: on each completion).
            db.execute("DELETE FROM jobs WHERE state = 'done' AND settled_at < ?", (now - self.done_seconds,))
            return cursor.rowcount == 1

        return await self._run(work)

    async def reschedule(self, job: Job, due_at: float, reason: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE jobs SET due_at = ?, attempts = attempts + 1, reason = ?, token = '' "
                "WHERE key = ? AND token = ? AND state = 'ready'",
                (due_at, reason, job.key, job.token),
            )
            return cursor.rowcount == 1

        return await self._run(work)

    async def bury(self, job: Job, reason: str, now: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE jobs SET state = 'dead', settled_at = ?, attempts = attempts + 1, reason = ?, "
                "token = '' WHERE key = ? AND token = ? AND state = 'ready'",
                (now, reason, job.key, job.token),
            )
            return cursor.rowcount == 1

        return await self._run(work)

    async def wake(self, reasons: tuple[str, ...], now: float) -> int:
        def work(db: sqlite3.Connection) -> int:
            marks = ", ".join("?" for _ in reasons)
            cursor = db.execute(
                # token = '': not a job a worker holds (its due time is its lease's end).
                f"UPDATE jobs SET due_at = ? WHERE state = 'ready' AND token = '' AND due_at > ? "  # noqa: S608
                f"AND reason IN ({marks})",
                (now, now, *reasons),
            )
            return cursor.rowcount

        return await self._run(work) if reasons else 0

    async def stats(self) -> Stats:
        def work(db: sqlite3.Connection) -> Stats:
            depth, oldest = db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM jobs WHERE state = 'ready'"
            ).fetchone()
            (dead,) = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'dead'").fetchone()
            return Stats(int(depth), None if oldest is None else float(oldest), int(dead))

        return await self._run(work)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        def work(db: sqlite3.Connection) -> list[DeadLetter]:
            rows = db.execute(
                "SELECT key, kind, payload, reason, attempts, settled_at FROM jobs "
                "WHERE state = 'dead' ORDER BY settled_at LIMIT ?",
                (limit,),
            ).fetchall()
            return [DeadLetter(r[0], r[1], decode_payload(r[2]), r[3], r[4], r[5]) for r in rows]

        return await self._run(work)

    async def close(self) -> None:
        def shut() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

        await asyncio.to_thread(shut)
