"""What a job is, and what to do after one failed: pure, the clock and the dice passed in."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.hubspot.errors import HubSpotError, NotConnected, RateLimited, Rejected, Unauthorized

# Transient failures back off exponentially from BACKOFF_BASE up to BACKOFF_CAP
# seconds (a retry after a create whose answer was lost waits longer: NotBefore).
BACKOFF_BASE = 10.0
BACKOFF_CAP = 600.0
# A portal with no usable grant is retried this often until an admin connects it
# (and at once when a portal is connected: Outbox.wake_parked).
PARK_SECONDS = 300.0
# The reasons of a parked job: waiting for an admin, not for HubSpot.
PARKED_REASONS = (Unauthorized.reason, NotConnected.reason)


@dataclass(frozen=True)
class Job:
    """One write to do. ``key`` makes it idempotent: a second job with the same key is not kept."""

    key: str
    kind: str
    payload: Mapping[str, Any]
    created_at: float
    due_at: float
    attempts: int = 0
    reason: str = ""  # why the last attempt failed
    # Set while a worker holds the job: only that worker may settle it.
    token: str = ""


def job_key(kind: str, user_id: str, call_key: str) -> str:
    """The idempotency key of a job about one user's call."""
    return f"{kind}:{user_id}:{call_key}"


def encode_payload(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def decode_payload(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a job's payload must be a JSON object")
    return value


@dataclass(frozen=True)
class Retry:
    """Run the job again at ``at``; ``parked`` when it waits for an admin, not for HubSpot."""

    at: float
    reason: str
    parked: bool = False


@dataclass(frozen=True)
class Bury:
    """Retrying cannot help: the job goes to the dead letters with the reason."""

    reason: str


class NotBefore(Exception):
    """An attempt that failed in a way that may have taken effect: retry no sooner than ``seconds``.

    A handler raises it when the retry must first be able to see what the
    failed attempt did (HubSpot's search finds a new record only seconds
    after its create). The retry is sorted by ``cause`` as any failure, and
    comes at the later of the two times.
    """

    def __init__(self, cause: Exception, seconds: float) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.seconds = seconds


def backoff(attempts: int, random: Callable[[], float]) -> float:
    """Seconds before retry number ``attempts`` (1 for the first): exponential, capped, with jitter.

    Half the delay is fixed and half is random, so instances that failed
    together do not retry together, and no retry comes sooner than half the
    step.
    """
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(max(attempts, 1) - 1, 30))
    return step / 2 + random() * step / 2


def after_failure(error: Exception, attempts: int, now: float, random: Callable[[], float]) -> Retry | Bury:
    """What becomes of a job whose attempt number ``attempts`` raised ``error``."""
    if isinstance(error, NotBefore):
        outcome = after_failure(error.cause, attempts, now, random)
        if isinstance(outcome, Retry):
            return Retry(max(outcome.at, now + error.seconds), outcome.reason, outcome.parked)
        return outcome
    if isinstance(error, Rejected):
        return Bury(f"rejected: {error}")
    if isinstance(error, RateLimited):
        # HubSpot says when: waiting less gets another 429.
        return Retry(now + max(0.0, error.retry_after), error.reason)
    if isinstance(error, Unauthorized | NotConnected):
        # Never dropped: the call is logged once the portal is connected again.
        return Retry(now + PARK_SECONDS, error.reason, parked=True)
    # Transient, and anything unforeseen: a bug must not lose the call either.
    reason = error.reason if isinstance(error, HubSpotError) else "error"
    return Retry(now + backoff(attempts, random), reason)
