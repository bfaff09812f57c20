"""What a dialog subscription does next: pure decisions, no sockets, no clock.

``subscribe_client`` does the I/O (sending SUBSCRIBE, timers, the directory)
and asks this module what an answer or a NOTIFY means for the subscription.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gateway.parsing import parse_decimal

# Refresh at this share of the granted lifetime (RFC 6665 leaves it to us;
# the rest is room for a slow PBX and a retransmitted SUBSCRIBE).
REFRESH_FRACTION = 0.8
MIN_REFRESH_SECONDS = 0.2
# Reasons after which RFC 6665 §4.1.3 says to subscribe again at once.
RETRY_AT_ONCE = frozenset({"deactivated", "timeout"})
# A PBX that accepts and at once ends every subscription must not get a
# SUBSCRIBE storm: never start one over sooner than this...
MIN_RESTART_SECONDS = 1.0
# ...and only a subscription that stayed active this long wipes its failure
# count, so that accept-then-terminate loops back off like refusals do.
STABLE_SECONDS = 30.0


@dataclass(frozen=True)
class Accepted:
    expires: int
    remote_tag: str | None
    remote_target: str | None

    @property
    def refresh_in(self) -> float:
        return max(MIN_REFRESH_SECONDS, self.expires * REFRESH_FRACTION)


@dataclass(frozen=True)
class Forgotten:
    """A refresh got 481: the PBX lost the subscription (a restart); start a new one now."""


@dataclass(frozen=True)
class Refused:
    reason: str


Outcome = Accepted | Forgotten | Refused


def on_answer(
    status: int,
    reason: str,
    *,
    refreshing: bool,
    to_tag: str | None,
    contact_uri: str | None,
    expires: str | None,
    requested: int,
) -> Outcome:
    """The meaning of a final answer to our SUBSCRIBE (challenges already met)."""
    if status == 481 and refreshing:
        return Forgotten()
    if status >= 300:
        return Refused(f"SUBSCRIBE answered {status} {reason}")
    granted = seconds(expires, requested)
    if granted <= 0:
        return Refused("SUBSCRIBE accepted with Expires: 0")
    return Accepted(granted, to_tag, contact_uri)


def after_termination(params: dict[str, str]) -> float | None:
    """Seconds before subscribing again after ``terminated``; ``None``: back off."""
    retry_after = seconds(params.get("retry-after"), -1)
    if retry_after >= 0:
        return float(retry_after)
    if params.get("reason", "") in RETRY_AT_ONCE:
        return 0.0
    return None


def backoff(failures: int, lo: float, hi: float, rng: Callable[[], float] = random.random) -> float:
    """Capped exponential backoff with jitter: somewhere in [cap/2, cap]."""
    # The exponent is bounded too: 2.0 ** 1024 overflows, and a subscription
    # failing for days (or a PBX refusing every body) counts that high.
    cap = min(hi, lo * 2.0 ** min(max(0, failures - 1), 64))
    return cap / 2 + cap / 2 * rng()


def restart_delay(delay: float) -> float:
    return max(MIN_RESTART_SECONDS, delay)


def failures_after(failures: int, active_for: float | None) -> int:
    """The failure count once a subscription has ended or failed again.

    ``active_for``: how long its last dialog was active (``None``: never).
    """
    if active_for is not None and active_for >= STABLE_SECONDS:
        return 1
    return failures + 1


def subscription_state(raw: str | None) -> tuple[str, dict[str, str]]:
    """``active;expires=600`` -> ("active", {"expires": "600"}).

    Whatever the PBX wrote: empty parameters are skipped, the first of a
    repeated one counts, values are unquoted; their meaning is checked
    where they are used (``seconds``), not here.
    """
    if not raw:
        return "", {}
    value, *params = raw.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        key, _, val = param.partition("=")
        name = key.strip().lower()
        if name:
            parsed.setdefault(name, val.strip().strip('"'))
    return value.strip().lower(), parsed


def seconds(raw: str | None, default: int) -> int:
    """A delta-seconds value from the network; ``default`` when absent or not one.

    Only ASCII digits, at most 9 of them (over 31 years): a superscript two, a fullwidth
    digit, ``+5`` or ``1_0`` are not numbers to SIP, whatever ``int()`` thinks.
    """
    if raw is None:
        return default
    value = parse_decimal(raw.strip(), max_digits=9)
    return default if value is None else value


@dataclass
class RefreshPacer:
    """How soon a refresh that a NOTIFY asked for (to get full state) may go out.

    A refused body or a version gap asks for a refresh, and the refresh
    brings a new NOTIFY: if the PBX sends the same unusable document again,
    that is a loop. The first refresh is prompt; each further one while the
    PBX keeps sending what cannot be used waits one more backoff step, so a
    document refused every time costs one refresh per step, not a SUBSCRIBE
    storm. A usable document makes the steps small again, once the step
    under way has ended (so that a PBX answering each refresh with one
    usable and one unusable document still gets one refresh per step).
    """

    lo: float
    hi: float
    strikes: int = 0
    earliest: float = 0.0  # when the next paced refresh may go (monotonic seconds)
    pending: bool = False

    def ask(self, now: float, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds until the refresh should go; ``None`` when one is already on its way."""
        self.strikes += 1
        if self.pending:
            return None
        self.pending = True
        at = max(now, self.earliest)
        self.earliest = at + backoff(self.strikes, self.lo, self.hi, rng)
        return at - now

    def sent(self) -> None:
        """A refresh (or a new subscription) went out: it brings full state."""
        self.pending = False

    def settled(self) -> None:
        """A usable document arrived."""
        self.strikes = 0
