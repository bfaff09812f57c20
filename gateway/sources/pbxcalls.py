"""The calls a PBX's channels make, turned into model signals per user: pure, shared by AMI and ESL.

A PBX management interface (Asterisk's AMI, FreeSWITCH's event socket)
reports *channels*: one per phone or trunk leg, each knowing the call it
belongs to (Asterisk's ``Linkedid``, FreeSWITCH's ``Channel-Call-UUID``). The
source adapters (``ami/events.py``, ``esl/events.py``) translate their events
into the calls of ``CallBook``; the book keeps the channels and calls and
returns the ``Signal``s for each user whose extension a channel rings.

The rules (docs/pbx.md#what-the-gateway-reports says the same for users):

- A call's identity is the PBX's call id, so a call seen again (a
  reconnect, the list of channels in progress) is the same call; the model
  emits nothing twice. The channel whose id is the call id started it
  (the *origin*).
- A user's *leg* of a call is every channel of the call that rings one of
  the user's extensions (the phone's own channel, not helper channels such
  as Asterisk's ``Local``). The leg is outbound when the user's phone
  started the call, inbound otherwise; a call the gateway dialled (its call
  id carries the dial prefix) is the outbound call of the user it rings
  first (the extension of its first channel) even though their phone is
  rung first; anyone else's phone it rings (the number dialled was
  another user's) has an inbound leg.
- Numbers: on an inbound leg the remote party is the caller id the phone is
  shown (connected line), else the origin's caller id, so a trunk call
  shows the external caller; the user's side is the number dialled on the
  trunk (the DID) when it is an E.164 number, else the user's own number.
  On an outbound leg the remote party is what the user dialled. A call the
  gateway dialled for a user without a number of their own is from the
  caller id the PBX gave its far end (the connected line of its first
  channel that is neither a helper nor the user's phone: what Asterisk's
  app_dial gives the dialled channel and FreeSWITCH the b-leg), else their
  extension; a user's own numbers are the dial's.
- Answered: an inbound leg when one of its channels answers; an outbound
  leg when any other (non-helper) channel of the call answers or the
  user's channel is bridged; a dialled call when any channel but the
  user's own phone and helpers answers.
- Ended: when the leg's last channel hangs up. Answered: COMPLETED
  (``transferred`` when the user transferred it). Unanswered: the dial
  status of the leg (busy, no answer, refused, failed), else its hang-up
  cause; a ring that ended because another phone of the call answered
  (Q.850 cause 26, FreeSWITCH ``LOSE_RACE``, or another leg already
  answered) is CANCELED as answered elsewhere, not MISSED; one the caller
  gave up on before anyone answered is MISSED (the model's rule).
- Reconnect: ``begin_resync``/``end_resync`` around the PBX's list of
  channels in progress: a channel known before and missing from the list
  hung up meanwhile (no cause known).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.model import ANSWERED_ELSEWHERE_CODE, Direction, EndStatus, Phase, Signal
from gateway.users.directory import Directory, User
from gateway.users.phone import to_e164

# At most this many channels are kept; a PBX (or a hostile peer) sending
# more new ones gets them ignored, and a log line from the adapter.
MAX_CHANNELS = 20_000
_UNKNOWN = {"", "<unknown>", "unknown", "anonymous"}


@dataclass(frozen=True)
class ChannelInfo:
    """What a PBX says about a channel when it appears (or is listed)."""

    uid: str
    call_id: str
    # The extension of the phone it rings (a helper: the extension it dials); None: trunk or other.
    device: str | None = None
    helper: bool = False  # a PBX-internal channel (Asterisk Local, FreeSWITCH loopback)
    caller_num: str | None = None
    caller_name: str | None = None
    connected_num: str | None = None
    connected_name: str | None = None
    exten: str | None = None  # the number dialled into the PBX on this channel
    up: bool = False
    bridged: bool = False


@dataclass
class _Channel:
    info: ChannelInfo
    user_id: str | None
    up: bool = False
    bridged: bool = False
    proposed: EndStatus | None = None  # from a dial status, before any hang-up cause
    elsewhere: bool = False
    transferred: bool = False


@dataclass
class _Leg:
    user_id: str
    direction: Direction
    dialled: bool
    extension: str | None  # of the phone it rang first: its channels are gone at its end
    channels: set[str] = field(default_factory=set)
    answered: bool = False
    ended: bool = False
    transferred: bool = False
    proposed: EndStatus | None = None
    elsewhere: bool = False


@dataclass
class _Call:
    call_id: str
    origin: ChannelInfo | None = None
    origin_is_user: bool = False
    channels: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)  # non-origin, non-helper channels that answered
    # How rings of the call ended unanswered, in order, with the user of the
    # channel that rang (None: a trunk or another phone): a leg's far end.
    far: list[tuple[str | None, EndStatus]] = field(default_factory=list)
    legs: dict[str, _Leg] = field(default_factory=dict)
    # The caller id the far end of a dialled call was given (see the module's notes).
    presented: str | None = None

    def far_status(self, user_id: str) -> EndStatus | None:
        """How the first ring of the call's far end (not the user's own phones) ended unanswered."""
        return next((status for who, status in self.far if who != user_id), None)


def _clean(raw: str | None) -> str | None:
    if raw is None or raw.strip().lower() in _UNKNOWN:
        return None
    return raw.strip()


class BadEvent(ValueError):
    """An event whose ids are not ids: skipped with a log line."""


class CallBook:
    """The channels and calls of one PBX (one tenant), and the signals they make."""

    def __init__(self, source: str, tenant: int, dial_of: Callable[[str], str | None]) -> None:
        self.source = source
        self.tenant = tenant
        # The gateway's dial id a PBX call id carries, when the gateway placed the call.
        self.dial_of = dial_of
        self._channels: dict[str, _Channel] = {}
        self._calls: dict[str, _Call] = {}
        self._listed: set[str] | None = None
        self.ignored = 0  # channels not kept because of MAX_CHANNELS

    def __len__(self) -> int:
        return len(self._channels)

    def open_leg(self, call_id: str, user_id: str) -> bool:
        """The user's leg of the call is known here and has not ended."""
        call = self._calls.get(call_id)
        leg = call.legs.get(user_id) if call else None
        return leg is not None and not leg.ended

    def dial_key(self, call_id: str) -> str | None:
        """The dialled call (``dial:<id>``) a call of this PBX is, when the gateway placed it."""
        dial_id = self.dial_of(call_id)
        return f"dial:{dial_id}" if dial_id else None

    # -- what the adapters report ---------------------------------------------
    def channel(self, info: ChannelInfo, at_ms: int, directory: Directory) -> list[Signal]:
        """A channel appeared, or was listed, or its details changed."""
        info = replace(
            info,
            caller_num=_clean(info.caller_num),
            caller_name=_clean(info.caller_name),
            connected_num=_clean(info.connected_num),
            connected_name=_clean(info.connected_name),
            exten=_clean(info.exten),
        )
        if self._listed is not None:
            self._listed.add(info.uid)
        known = self._channels.get(info.uid)
        if known is not None:
            return self._update(known, info, at_ms, directory)
        if len(self._channels) >= MAX_CHANNELS:
            self.ignored += 1
            return []
        user = self._user(info, directory)
        chan = _Channel(info, user.id if user else None)
        self._channels[info.uid] = chan
        call = self._calls.setdefault(info.call_id, _Call(info.call_id))
        call.channels.add(info.uid)
        if info.uid == info.call_id:
            call.origin = info
            call.origin_is_user = user is not None
        out: list[Signal] = []
        if user is not None:
            leg = call.legs.get(user.id)
            rings = leg is None
            if leg is None:
                leg = call.legs[user.id] = self._new_leg(call, chan, user, directory)
            leg.channels.add(info.uid)
            if rings:
                out.append(self._signal(call, leg, Phase.RINGING, at_ms, directory))
        out += self._update(chan, info, at_ms, directory)
        return out

    def answered(self, uid: str, at_ms: int, directory: Directory) -> list[Signal]:
        chan = self._channels.get(uid)
        if chan is None:
            return []
        chan.up = True
        return self._settle(chan.info.call_id, at_ms, directory)

    def bridged(self, uid: str, at_ms: int, directory: Directory) -> list[Signal]:
        chan = self._channels.get(uid)
        if chan is None:
            return []
        chan.up = chan.bridged = True
        return self._settle(chan.info.call_id, at_ms, directory)

    def dial_result(
        self, caller: str | None, dest: str | None, status: EndStatus | None, at_ms: int, directory: Directory
    ) -> list[Signal]:
        """A dial from ``caller`` to ``dest`` ended unanswered with ``status`` (None: the caller gave up)."""
        dest_chan = self._channels.get(dest or "")
        if dest_chan is not None and status is not None:
            dest_chan.proposed = status
            call = self._calls.get(dest_chan.info.call_id)
            if call is not None:
                call.far.append((dest_chan.user_id, status))
        return []

    def dial_answered(self, dest: str, at_ms: int, directory: Directory) -> list[Signal]:
        return self.answered(dest, at_ms, directory)

    def transferred(self, uid: str) -> None:
        """The channel's user handed the call on (blind or attended transfer)."""
        chan = self._channels.get(uid)
        if chan is not None:
            chan.transferred = True

    def hangup(
        self, uid: str, at_ms: int, directory: Directory, status: EndStatus | None, elsewhere: bool = False
    ) -> list[Signal]:
        """The channel is gone; ``status`` is what its hang-up cause proposes."""
        chan = self._channels.get(uid)
        if chan is None:
            return []
        out = self._settle(chan.info.call_id, at_ms, directory)
        del self._channels[uid]
        call = self._calls.get(chan.info.call_id)
        if call is None:
            return out
        call.channels.discard(uid)
        if not chan.info.helper and uid != chan.info.call_id and status is not None:
            call.far.append((chan.user_id, status))  # the far end of an outbound call
        leg = call.legs.get(chan.user_id or "")
        if leg is not None and not leg.ended:
            leg.channels.discard(uid)
            leg.transferred = leg.transferred or chan.transferred
            proposal = chan.proposed or status
            if proposal is not None:
                leg.proposed = proposal
            leg.elsewhere = leg.elsewhere or elsewhere or chan.elsewhere
            if not leg.channels:
                leg.ended = True
                out.append(self._end(call, leg, at_ms, directory))
        if not call.channels:
            del self._calls[call.call_id]
        return out

    def begin_resync(self) -> None:
        """The PBX's list of channels in progress follows (after a connect)."""
        self._listed = set()

    def end_resync_abandoned(self) -> None:
        """No list follows after all (the PBX refused it): keep every channel known."""
        self._listed = None

    def end_resync(self, at_ms: int, directory: Directory) -> list[Signal]:
        """The list is complete: channels known before and not listed hung up meanwhile."""
        if self._listed is None:
            return []  # no list was asked for: nothing to compare
        listed, self._listed = self._listed, None
        out: list[Signal] = []
        for uid in [uid for uid in self._channels if uid not in listed]:
            out += self.hangup(uid, at_ms, directory, None)
        return out

    # -- the rules ---------------------------------------------------------
    def _user(self, info: ChannelInfo, directory: Directory) -> User | None:
        if info.helper or not info.device:
            return None
        return directory.by_extension(self.tenant, info.device)

    def _new_leg(self, call: _Call, chan: _Channel, user: User, directory: Directory) -> _Leg:
        dialler = self._dialler(call, directory)
        dialled = self.dial_key(call.call_id) is not None and dialler in (None, user.id)
        outbound = dialled or chan.info.uid == call.call_id
        return _Leg(user.id, Direction.OUTBOUND if outbound else Direction.INBOUND, dialled, chan.info.device)

    def _dialler(self, call: _Call, directory: Directory) -> str | None:
        """Whom a dialled call rings first (its first channel's extension); None: not known yet."""
        device = call.origin.device if call.origin else None
        user = directory.by_extension(self.tenant, device) if device else None
        return user.id if user else None

    def _update(self, chan: _Channel, info: ChannelInfo, at_ms: int, directory: Directory) -> list[Signal]:
        # The first word on a channel's numbers stays: a trunk channel's
        # extension moves on through the dialplan, but the DID was the first.
        old = chan.info
        chan.info = replace(
            old,
            caller_num=old.caller_num or info.caller_num,
            caller_name=old.caller_name or info.caller_name,
            connected_num=old.connected_num or info.connected_num,
            connected_name=old.connected_name or info.connected_name,
            exten=old.exten or info.exten,
        )
        chan.up = chan.up or info.up or info.bridged
        chan.bridged = chan.bridged or info.bridged
        self._note_presented(chan)
        return self._settle(chan.info.call_id, at_ms, directory)

    def _note_presented(self, chan: _Channel) -> None:
        """Keep the caller id a dialled call's far end was given: the first word, as for any number."""
        call = self._calls.get(chan.info.call_id)
        if call is None or call.presented is not None or chan.info.helper or not chan.info.connected_num:
            return
        own = call.legs.get(chan.user_id or "")
        if (own is None or not own.dialled) and any(leg.dialled for leg in call.legs.values()):
            call.presented = chan.info.connected_num

    def _settle(self, call_id: str, at_ms: int, directory: Directory) -> list[Signal]:
        """Answer the legs the call's channels now make answered."""
        call = self._calls.get(call_id)
        if call is None:
            return []
        for uid in call.channels:
            chan = self._channels[uid]
            if chan.up and not chan.info.helper and uid != call.call_id:
                call.answered.add(uid)
        out = []
        for leg in call.legs.values():
            if leg.answered or leg.ended or not self._leg_answered(call, leg):
                continue
            leg.answered = True
            out.append(self._signal(call, leg, Phase.ANSWERED, at_ms, directory))
        return out

    def _leg_answered(self, call: _Call, leg: _Leg) -> bool:
        own = leg.channels
        if leg.dialled:
            return bool(call.answered - own)
        if leg.direction is Direction.INBOUND:
            return bool(call.answered & own)
        return bool(call.answered - own) or any(
            self._channels[uid].bridged for uid in own if uid in self._channels
        )

    def _end(self, call: _Call, leg: _Leg, at_ms: int, directory: Directory) -> Signal:
        status: EndStatus | None
        elsewhere = False
        if leg.answered:
            status = EndStatus.COMPLETED
        elif leg.dialled:
            # The far end's refusal; else the user did not take their own call.
            status = call.far_status(leg.user_id) or EndStatus.CANCELED
        elif leg.direction is Direction.OUTBOUND:
            status = call.far_status(leg.user_id) or leg.proposed
        else:
            status = leg.proposed
            elsewhere = leg.elsewhere or (bool(call.answered) and status in (None, EndStatus.CANCELED))
            if elsewhere:
                status = EndStatus.CANCELED
        return replace(
            self._signal(call, leg, Phase.ENDED, at_ms, directory),
            end_status=status,
            sip_code=ANSWERED_ELSEWHERE_CODE if elsewhere else None,
            transferred=leg.transferred,
        )

    def _signal(self, call: _Call, leg: _Leg, phase: Phase, at_ms: int, directory: Directory) -> Signal:
        user = directory.by_id(leg.user_id)
        own = user.own_number if user else None
        region = directory.default_region
        number: Callable[[str | None], str | None] = lambda raw: to_e164(_clean(raw), region)  # noqa: E731
        origin = call.origin
        remote_name: str | None = None
        if leg.dialled:
            to_number = None  # the dial's
            # Not while only the user's phone rings: the far end is not dialled
            # yet, and the model keeps a call's first number.
            ringing = phase is Phase.RINGING
            from_number = None if own or ringing else number(call.presented) or leg.extension
        elif leg.direction is Direction.OUTBOUND:
            from_number = own or leg.extension
            to_number = number(origin.exten) if origin else None
        else:
            device = self._leg_info(leg)
            from_number = number(device.connected_num if device else None) or (
                number(origin.caller_num) if origin else None
            )
            remote_name = _clean(device.connected_name if device else None) or (
                _clean(origin.caller_name) if origin else None
            )
            trunk = origin is not None and not call.origin_is_user and not origin.helper
            did = number(origin.exten) if origin and trunk else None
            to_number = did if did and did.startswith("+") else own or leg.extension
        return Signal(
            source=self.source,
            call_id=call.call_id,
            user_id=leg.user_id,
            direction=leg.direction,
            phase=phase,
            at_ms=at_ms,
            from_number=from_number,
            to_number=to_number,
            remote_name=remote_name,
        )

    def _leg_info(self, leg: _Leg) -> ChannelInfo | None:
        for uid in leg.channels:
            chan = self._channels.get(uid)
            if chan is not None:
                return chan.info
        return None
