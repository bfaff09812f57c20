"""The interface every dialling route implements, and the registry of routes by name.

A route places a planned call through some telephony (a CPaaS REST API, a
SIP REFER, an AMI or ESL originate, the demo). It never touches the call's
state: the dial service created the call before asking, and what the
telephony reports afterwards reaches the call through the usual sources,
joined to it exactly (the route names the provider's call or passes the
plan's ``call_key`` through) or by the pending-dial match
(``Dialler.match_seconds``). See docs/dialling.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.users.directory import User


@dataclass(frozen=True)
class Refusal:
    """Why a dial was not placed: an HTTP status, a short metric label, one sentence for the user."""

    status: int
    reason: str
    message: str
    retry_after_seconds: int | None = None


def no_phone(missing: str) -> Refusal:
    """The user has no phone the route rings first: the same reason on every route."""
    return Refusal(409, "no-phone", missing)


def no_caller_id() -> Refusal:
    """The user has no number of their own, and the route needs one to present."""
    return Refusal(409, "no-caller-id", "you have no phone number of your own to call from")


class DialRefused(Exception):
    """Raised by a route that could not place the call (and by nothing else)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal

    @classmethod
    def by_route(cls, message: str, reason: str = "route-refused", status: int = 502) -> DialRefused:
        """The telephony refused or could not be reached: 502 unless said otherwise (504: timed out)."""
        return cls(Refusal(status, reason, message))


@dataclass(frozen=True)
class DialPlan:
    """A dial the policy allowed: what the route must place."""

    user_id: str
    tenant: int
    call_id: str  # ours; the call's key in the model is ``call_key``
    target: str  # E.164 of the number to call
    # E.164, one of the user's own numbers; None: the user has none, and the
    # PBX presents the caller id it gives their phone (``Dialler.needs_caller_id``).
    caller_id: str | None
    route: str

    @property
    def call_key(self) -> str:
        """The SDK's externalCallId of the call; a source naming it joins the call exactly."""
        return f"dial:{self.call_id}"

    def signal(self, phase: Phase, at_ms: int, end: EndStatus | None = None) -> Signal:
        """A signal of the dialled call itself (source ``dial``), from the caller id to the target."""
        return Signal(
            source="dial",
            call_id=self.call_id,
            user_id=self.user_id,
            direction=Direction.OUTBOUND,
            phase=phase,
            at_ms=at_ms,
            from_number=self.caller_id,
            to_number=self.target,
            end_status=end,
        )

    def presented(self) -> str:
        """The caller id, for a route that needs one (the policy gave it one)."""
        if self.caller_id is None:
            raise DialRefused(no_caller_id())
        return self.caller_id


@dataclass(frozen=True)
class Placed:
    """What a route says after the telephony accepted the call."""

    # The provider's id of the call, for the log line (e.g. Twilio's CallSid).
    reference: str = ""
    # Call keys a source will report this call under ("twilio:CA…",
    # "sip:<Call-ID>"): bound to the dialled call, so their signals advance it.
    # Bound after ``place`` returns: a route whose telephony may report
    # sooner passes ``DialPlan.call_key`` through to its source instead.
    joins: tuple[str, ...] = ()


class Dialler(Protocol):
    """A dialling route. Register one per name; tenants choose it in ``[dial.<portal>]``."""

    @property
    def name(self) -> str: ...

    @property
    def match_seconds(self) -> float:
        """How long a new outbound call of the user to the target, from any source, joins the dial.

        For telephony that reports nothing exact (a PBX's dialog events);
        0 when every report of the call carries an exact correlation.
        """
        ...

    @property
    def ring_seconds(self) -> float:
        """The longest a placed call may go unanswered before its telephony reports its end.

        The dial's deadline is this plus a margin (``gateway.dial.watchdog``):
        a call still unanswered and not ended then is ended CANCELED.
        """
        ...

    @property
    def chooses_caller_id(self) -> bool:
        """Whether the telephony presents ``DialPlan.caller_id`` to the number.

        False when the user's phone calls as itself and its PBX decides
        (the SIP route): a ``callerId`` asked for is then refused rather
        than reported as used.
        """
        ...

    @property
    def needs_caller_id(self) -> bool:
        """Whether a dial needs a number of the user's own as its caller id.

        False when the PBX gives the call a caller id itself (the one it
        gives the user's phone) where the dial has none: the ``sip``, ``ami``
        and ``esl`` routes. A user without a number is then not refused;
        the call's caller id is whatever its telephony reports.
        """
        ...

    def refusal_for(self, user: User) -> Refusal | None:
        """Why this route cannot ring ``user`` first, or None if it can.

        Asked before the call is created, so nothing is placed or counted:
        no phone of the user's (``no_phone``, the same on every route), no
        PBX for their portal (``route-unavailable``).
        """
        ...

    async def place(self, plan: DialPlan) -> Placed:
        """Ask the telephony to place the call; return once it accepted it.

        Raise ``DialRefused`` (``DialRefused.by_route(...)``) when it refused
        or could not be reached; any other exception is treated alike, with a
        log line. The call already exists; the dial service ends it FAILED.
        """
        ...


class Routes:
    """The routes this gateway offers, by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Dialler] = {}

    def register(self, dialler: Dialler) -> None:
        if dialler.name in self._by_name:
            raise ValueError(f"a dialling route named {dialler.name!r} is already registered")
        self._by_name[dialler.name] = dialler

    def get(self, name: str) -> Dialler | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_name))
