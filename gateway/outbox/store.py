"""Where jobs are kept: the interface both stores implement.

A job taken is leased, not removed: taking it moves its due time to the
end of the lease and gives it a fresh token. If the worker finishes, it
completes, reschedules or buries the job with that token; if it dies, the
job is simply due again when the lease ends, and any worker takes it. A
token from before a takeover settles nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.outbox.jobs import Job


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or written (Redis down, disk full)."""


@dataclass(frozen=True)
class Stats:
    depth: int  # jobs waiting or running
    oldest_created_at: float | None
    dead: int


@dataclass(frozen=True)
class DeadLetter:
    key: str
    kind: str
    payload: Mapping[str, Any]
    reason: str
    attempts: int
    buried_at: float


class JobStore(Protocol):
    async def put(self, job: Job) -> bool:
        """Keep the job unless one with its key is waiting, running, dead or done recently."""
        ...

    async def take(self, now: float, lease_seconds: float, token: str) -> Job | None:
        """The job most overdue (due at ``now`` or before), leased until ``now + lease_seconds``."""
        ...

    async def renew(self, job: Job, lease_end: float) -> bool:
        """The job is still running: its lease now ends at ``lease_end``. False if the lease was lost."""
        ...

    async def complete(self, job: Job, now: float) -> bool:
        """The job succeeded; its key is remembered as done. False if the lease was lost."""
        ...

    async def reschedule(self, job: Job, due_at: float, reason: str) -> bool:
        """The attempt failed; run again at ``due_at``. False if the lease was lost."""
        ...

    async def bury(self, job: Job, reason: str, now: float) -> bool:
        """Retrying cannot help: keep the job among the dead letters. False if the lease was lost."""
        ...

    async def wake(self, reasons: tuple[str, ...], now: float) -> int:
        """Makes the waiting jobs whose last failure had one of ``reasons`` due at ``now``; how many."""
        ...

    async def stats(self) -> Stats: ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    async def close(self) -> None: ...
