"""One watched entity's dialogs, turned into model signals.

``EntityWatch`` is sans-I/O: the transport hands it each parsed document of
one subscription (or each PUBLISH for one entity) with the time it arrived,
and gets back the ``Signal``s to feed the call tracker, plus two flags:
``stale`` (the document was older than one already applied and was ignored)
and ``resync`` (a partial document arrived after a gap in ``version``s; the
caller should re-subscribe to get full state).

How documents are applied:

- ``subscription`` mode (NOTIFY): ``version`` increases by one per NOTIFY.
  A document whose version is not above the last one is stale. A full
  document replaces the dialog set: a dialog that is not in it any more has
  ended (Asterisk drops nothing, it goes to ``terminated``; others drop
  dialogs). A partial document updates only the dialogs it names. A new
  subscription restarts versions: call ``resubscribed()`` before its first
  NOTIFY; the dialogs seen so far are kept, so the new full state ends the
  calls that ended meanwhile and does not ring the ones still up again.
- ``publication`` mode (PUBLISH, e.g. Kamailio/OpenSIPS ``pua_dialoginfo``):
  each publication describes one dialog and counts its own versions, so
  versions are kept per dialog and a "full" document never ends the dialogs
  it does not name; a dialog ends when it says ``terminated`` or when its
  publication is removed or expires (``withdraw``).

Dialogs sharing a ``call-id`` (forks of one call) are one call: it rings when
the first one appears, is answered when any is confirmed, and ends when all
have ended, with the end of the answered fork (or the most telling failure).

What each PBX can tell, and the consequences here:

- Asterisk hints give one dialog, ``id`` = the extension, for every call;
  no call-id, so each call gets a call id of its own from the entity, the
  dialog id, the time it was first seen and a counter. They give
  ``direction`` and the caller only while ringing, so the direction is
  remembered per dialog; a dialog first seen ``confirmed`` with no direction
  is taken as outbound (the extension went in use without ringing, so the
  user dialled), and its "answered" is when the user started dialling.
  There is no reason on ``terminated``: a call that rang and went idle is
  MISSED, even if another phone of a ring group answered it (Asterisk cannot
  tell those apart). A second call ringing during a call (the hint goes from
  ``confirmed`` back to ``early``) is not reported. After a gateway restart
  a call in progress gets a new call id.
- FreeSWITCH gives one dialog per channel (``id`` = channel uuid) with
  direction and identities, no call-id and no reasons.
- Kamailio/OpenSIPS give call-id, tags, direction and identities, but no
  ``event``/``code`` either, so end statuses come from the model's
  normalisation (see ``endstatus``).

Call ids: the dialog's ``call-id`` when there is one (a digest of it when it
is over 128 characters or has characters outside ``[A-Za-z0-9._:@+=-]``),
else the synthetic id above. Several instances may see the same PBX call
(a subscription handed over, a restart): ``unnamed`` lists the dialogs about
to open without a call-id, with the key that names the PBX call (its dialog
id and tags) and the id this watch would make; the caller settles the id
with the other instances (``dialog_delivery``) and hands it back with
``name_calls`` before ``apply``. ``ended_claims`` gives back the keys of the
calls that ended, so that the next call with the same key is a new call.

Numbers: identities go through ``gateway.users.phone.to_e164``; withheld callers
(``anonymous``, ``anonymous.invalid``, ``invalid``) have no number. The
user's own number is ``local_number`` when given (a PBX's local identity is
usually an extension), else the local identity, else the entity. A remote
identity that names another gateway user (``known_number``: by AOR, or by
extension within the tenant) is sent as that user's number. An identity
that is no number (``sip:alice@example.com``) is sent as no number; its
``user@host`` becomes the remote name when the dialog gives no display name.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.sources.endstatus import end_status
from gateway.sources.sip.dialoginfo import Dialog, DialogInfo
from gateway.users.phone import to_e164

WatchMode = Literal["subscription", "publication"]

# Bounds on what one entity may make us hold (a hostile or broken PBX).
MAX_OPEN_DIALOGS = 256
MAX_REMEMBERED_ENDS = 1024

_WITHHELD = frozenset({"anonymous", "invalid", "unknown", "restricted", "unavailable"})
_URI_USER_HOST = re.compile(r"^(?:sips?|tel):([^@;>?]*)(?:@([^;>?:]*))?", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# The generic ingest's call-id alphabet: what the rest of the gateway (SSE
# payloads, /api/calls/{externalCallId}) is known to carry well.
_PLAIN_CALL_ID = re.compile(r"^[A-Za-z0-9._:@+=-]{1,128}\Z")


@dataclass(frozen=True)
class WatchResult:
    signals: list[Signal]
    resync: bool = False
    stale: bool = False


@dataclass
class _Track:
    """What is known of one open dialog."""

    dialog_id: str
    call: _Call
    confirmed: bool = False
    ended: tuple[str | None, int | None] | None = None  # (event, code) once terminated


@dataclass(frozen=True)
class Unnamed:
    """A dialog about to open that names no call-id: the key of its PBX call and our proposed id."""

    dialog_id: str
    key: str
    proposed: str


@dataclass
class _Call:
    call_id: str
    first_seen_ms: int
    direction: Direction
    direction_known: bool
    open_dialogs: set[str] = field(default_factory=set)
    tracks: list[_Track] = field(default_factory=list)
    phase: Phase | None = None  # the highest phase already signalled
    remote_uri: str | None = None
    remote_name: str | None = None
    local_uri: str | None = None
    claim_key: str | None = None  # the key its id was settled under (no call-id)


class EntityWatch:
    """The dialog set of one subscription (or one PUBLISH entity)."""

    def __init__(
        self,
        user_id: str,
        source: str = "sip",
        default_region: str = "US",
        *,
        mode: WatchMode = "subscription",
        local_number: str | None = None,
        known_number: Callable[[str], str | None] | None = None,
    ) -> None:
        self.user_id = user_id
        self.source = source
        self.default_region = default_region
        self.mode: WatchMode = mode
        self.local_number = local_number
        # The number of the gateway user a remote identity names, if any:
        # a call between two extensions is logged with the other user's
        # number, which is what HubSpot matches records on.
        self.known_number = known_number
        self._version: int | None = None
        self._tracks: dict[str, _Track] = {}
        self._calls: dict[str, _Call] = {}
        self._seq = 0
        # Dialog id -> last version seen, also for ended dialogs (publication
        # mode orders by it; a late copy of an ended dialog must not ring).
        self._dialog_versions: OrderedDict[str, int] = OrderedDict()
        # Call ids settled with other instances, by dialog id, for the next _open.
        self._named: dict[str, tuple[str, str]] = {}
        self._ended_claims: list[tuple[str, str]] = []

    # -- public ------------------------------------------------------------------
    @property
    def version(self) -> int | None:
        """The version of the last document applied in this subscription."""
        return self._version

    @property
    def open_calls(self) -> int:
        return len(self._calls)

    def resubscribed(self) -> None:
        """A new subscription starts: versions restart, the dialogs are kept."""
        self._version = None

    def unnamed(self, info: DialogInfo, now_ms: int) -> list[Unnamed]:
        """The dialogs of ``info`` that would open a call without a call-id, with our ids for them."""
        out: list[Unnamed] = []
        for dialog in info.dialogs:
            if dialog.call_id or dialog.id in self._tracks or dialog.state == "terminated":
                continue
            if self.mode == "publication" and info.version < self._dialog_versions.get(dialog.id, 0):
                continue
            proposed = self._synthetic_call_id(info.entity, dialog.id, now_ms)
            out.append(Unnamed(dialog.id, call_key_of(dialog), proposed))
        return out

    def name_calls(self, names: dict[str, tuple[str, str]]) -> None:
        """Dialog id -> (key, call id) settled for the dialogs ``unnamed`` listed."""
        self._named.update(names)

    def vanished(self, info: DialogInfo, claimed: dict[str, str], now_ms: int) -> list[Signal]:
        """End the calls claimed for this entity (by any instance) that a full document no longer
        shows and this watch does not know: calls that ended while nobody here watched (the AOR
        was being handed over). Their claims are given back by ``ended_claims``."""
        if self.mode != "subscription" or info.state != "full":
            return []
        shown = {call_key_of(d) for d in info.dialogs if not d.call_id and d.state != "terminated"}
        known = {call.claim_key for call in self._calls.values()}
        signals: list[Signal] = []
        for key, call_id in sorted(claimed.items()):
            if key in shown or key in known:
                continue
            self._ended_claims.append((key, call_id))
            signals.append(
                Signal(
                    source=self.source,
                    call_id=call_id,
                    user_id=self.user_id,
                    direction=Direction.INBOUND,  # the first observer's direction stands (the model)
                    phase=Phase.ENDED,
                    at_ms=now_ms,
                )
            )
        return signals

    def call_of(self, dialog_id: str) -> tuple[str, Direction] | None:
        """The call an open dialog belongs to, and its direction."""
        track = self._tracks.get(dialog_id)
        return None if track is None else (track.call.call_id, track.call.direction)

    def withdraw_recorded(self, now_ms: int, calls: dict[str, tuple[str, Direction]]) -> list[Signal]:
        """End the dialogs of a publication (dialog id -> its call, as recorded by whichever
        instance accepted it): those open here as ``withdraw`` does, the others by their call id."""
        open_here = [d for d in calls if d in self._tracks]
        signals = self.withdraw(now_ms, open_here)
        ended = {s.call_id for s in signals}
        for dialog_id, (call_id, direction) in calls.items():
            if dialog_id in open_here or call_id in ended:
                continue
            ended.add(call_id)
            signals.append(
                Signal(
                    source=self.source,
                    call_id=call_id,
                    user_id=self.user_id,
                    direction=direction,
                    phase=Phase.ENDED,
                    at_ms=now_ms,
                )
            )
        return signals

    def ended_claims(self) -> list[tuple[str, str]]:
        """(key, call id) of the settled calls that ended since the last call."""
        ended, self._ended_claims = self._ended_claims, []
        return ended

    def apply(self, info: DialogInfo, now_ms: int) -> WatchResult:
        try:
            if self.mode == "publication":
                return self._apply_publication(info, now_ms)
            return self._apply_subscription(info, now_ms)
        finally:
            self._named.clear()  # settled for this document only

    def withdraw(self, now_ms: int, dialog_ids: Iterable[str] | None = None) -> list[Signal]:
        """End the named open dialogs (all when None), e.g. when a publication
        is removed or expires; they end without a reason, like a vanished one."""
        ids = list(self._tracks) if dialog_ids is None else [d for d in dialog_ids if d in self._tracks]
        touched: dict[str, _Call] = {}
        for dialog_id in ids:
            track = self._tracks[dialog_id]
            self._terminate(track, None, None)
            touched[track.call.call_id] = track.call
        return self._signals(touched.values(), now_ms)

    # -- modes -------------------------------------------------------------------
    def _apply_subscription(self, info: DialogInfo, now_ms: int) -> WatchResult:
        resync = False
        if self._version is not None and info.version <= self._version:
            return WatchResult(signals=[], stale=True)
        if info.state == "partial" and (self._version is None or info.version != self._version + 1):
            # Changes in between are lost: apply what we have, ask for full state.
            resync = True
        self._version = info.version
        touched: dict[str, _Call] = {}
        named = {d.id for d in info.dialogs}
        if info.state == "full":
            for dialog_id in [d for d in self._tracks if d not in named]:
                track = self._tracks[dialog_id]
                self._terminate(track, None, None)
                touched[track.call.call_id] = track.call
        for dialog in info.dialogs:
            call = self._observe(dialog, info, now_ms)
            if call is not None:
                touched[call.call_id] = call
        return WatchResult(signals=self._signals(touched.values(), now_ms), resync=resync)

    def _apply_publication(self, info: DialogInfo, now_ms: int) -> WatchResult:
        # Versions are never negative: a dialog not seen before takes any.
        fresh = [d for d in info.dialogs if info.version >= self._dialog_versions.get(d.id, 0)]
        if info.dialogs and not fresh:
            return WatchResult(signals=[], stale=True)
        touched: dict[str, _Call] = {}
        for dialog in fresh:
            self._remember_version(dialog.id, info.version)
            call = self._observe(dialog, info, now_ms)
            if call is not None:
                touched[call.call_id] = call
        return WatchResult(signals=self._signals(touched.values(), now_ms))

    def _remember_version(self, dialog_id: str, version: int) -> None:
        self._dialog_versions[dialog_id] = version
        self._dialog_versions.move_to_end(dialog_id)
        while len(self._dialog_versions) > MAX_REMEMBERED_ENDS:
            self._dialog_versions.popitem(last=False)

    # -- dialogs -----------------------------------------------------------------
    def _observe(self, dialog: Dialog, info: DialogInfo, now_ms: int) -> _Call | None:
        """Fold one dialog's current state in; the call it belongs to, if any."""
        track = self._tracks.get(dialog.id)
        if track is None:
            if dialog.state == "terminated" or len(self._tracks) >= MAX_OPEN_DIALOGS:
                # Nothing was seen of it while it was up: nothing to report.
                return None
            track = self._open(dialog, info, now_ms)
        call = track.call
        self._learn(call, dialog, info)
        if dialog.state == "terminated":
            self._terminate(track, dialog.event, dialog.code)
        elif dialog.state == "confirmed":
            track.confirmed = True
        # A confirmed dialog going back to early only happens with Asterisk's
        # aggregated hint (a second call ringing): the call in progress stays.
        return call

    def _open(self, dialog: Dialog, info: DialogInfo, now_ms: int) -> _Track:
        claim_key: str | None = None
        if dialog.call_id:
            call_id = plain_call_id(dialog.call_id)
        elif dialog.id in self._named:
            claim_key, call_id = self._named.pop(dialog.id)
        else:
            call_id = self._synthetic_call_id(info.entity, dialog.id, now_ms)
        call = self._calls.get(call_id)
        if call is None:
            known = dialog.direction is not None
            call = _Call(
                call_id=call_id,
                first_seen_ms=now_ms,
                direction=_direction(dialog),
                direction_known=known,
                claim_key=claim_key,
            )
            self._calls[call_id] = call
        track = _Track(dialog_id=dialog.id, call=call)
        self._tracks[dialog.id] = track
        call.open_dialogs.add(dialog.id)
        call.tracks.append(track)
        return track

    def _synthetic_call_id(self, entity: str, dialog_id: str, now_ms: int) -> str:
        # Asterisk reuses the dialog id (the extension) for every call, so the
        # id alone would merge consecutive calls into one.
        self._seq += 1
        digest = hashlib.sha256(f"{entity}\0{dialog_id}".encode()).hexdigest()[:10]
        readable = _UNSAFE.sub("_", dialog_id)[:48]
        return f"{readable}.{digest}.{now_ms}.{self._seq}"

    def _learn(self, call: _Call, dialog: Dialog, info: DialogInfo) -> None:
        if dialog.direction is not None and not call.direction_known:
            call.direction = Direction.OUTBOUND if dialog.direction == "initiator" else Direction.INBOUND
            call.direction_known = True
        remote = dialog.remote_identity or dialog.remote_target
        if remote and call.remote_uri is None:
            call.remote_uri = remote
        if dialog.remote_display and call.remote_name is None:
            name = dialog.remote_display.strip()
            if name.lower() not in _WITHHELD:
                call.remote_name = name
        local = dialog.local_identity or info.entity
        if call.local_uri is None or (dialog.local_identity and call.local_uri == info.entity):
            call.local_uri = local

    def _terminate(self, track: _Track, event: str | None, code: int | None) -> None:
        track.ended = (event, code)
        call = track.call
        call.open_dialogs.discard(track.dialog_id)
        self._tracks.pop(track.dialog_id, None)

    # -- signals -----------------------------------------------------------------
    def _signals(self, calls: Iterable[_Call], now_ms: int) -> list[Signal]:
        out: list[Signal] = []
        for call in calls:
            phase = self._phase(call)
            if call.phase is not None and phase <= call.phase:
                continue
            call.phase = phase
            out.append(self._signal(call, phase, now_ms))
            if phase is Phase.ENDED:
                del self._calls[call.call_id]
                if call.claim_key is not None:
                    self._ended_claims.append((call.claim_key, call.call_id))
        return out

    @staticmethod
    def _phase(call: _Call) -> Phase:
        if not call.open_dialogs:
            return Phase.ENDED
        if any(t.confirmed for t in call.tracks):
            return Phase.ANSWERED
        return Phase.RINGING

    def _signal(self, call: _Call, phase: Phase, now_ms: int) -> Signal:
        status: EndStatus | None = None
        transferred = False
        code: int | None = None
        if phase is Phase.ENDED:
            status, transferred, code = self._ending(call)
        remote = self._remote_number(call.remote_uri)
        local = self.local_number or self._number(call.local_uri)
        inbound = call.direction is Direction.INBOUND
        return Signal(
            source=self.source,
            call_id=call.call_id,
            user_id=self.user_id,
            direction=call.direction,
            phase=phase,
            at_ms=now_ms,
            from_number=remote if inbound else local,
            to_number=local if inbound else remote,
            remote_name=call.remote_name or (None if remote else _identity_name(call.remote_uri)),
            end_status=status,
            sip_code=code,
            transferred=transferred,
        )

    @staticmethod
    def _ending(call: _Call) -> tuple[EndStatus | None, bool, int | None]:
        """The end of the answered fork, else the most telling one."""
        was_confirmed = any(t.confirmed for t in call.tracks)
        candidates = [t for t in call.tracks if t.confirmed] if was_confirmed else call.tracks
        best: tuple[EndStatus | None, bool, int | None] = (None, False, None)
        for track in candidates:
            # Every track of an ended call has ended (its call has no open dialog).
            assert track.ended is not None
            event, code = track.ended
            status, transferred = end_status(call.direction, track.confirmed, event, code)
            if best == (None, False, None) or status is not None:
                best = (status, transferred, code)
        return best

    def _remote_number(self, uri: str | None) -> str | None:
        if uri is not None and self.known_number is not None:
            known = self.known_number(uri)
            if known:
                return known
        return self._number(uri)

    def _number(self, uri: str | None) -> str | None:
        if uri is None:
            return None
        text = _unbracketed(uri)
        match = _URI_USER_HOST.match(text)
        if match and _withheld(match.group(1), match.group(2)):
            return None
        return to_e164(text, self.default_region)


def _unbracketed(uri: str) -> str:
    """An identity without surrounding blanks and the ``<…>`` some PBXes keep."""
    return uri.strip().strip("<>")


def _identity_name(uri: str | None) -> str | None:
    """``user@host`` of an identity that is no number (``sip:alice@example.com``), for the title."""
    if uri is None:
        return None
    match = _URI_USER_HOST.match(_unbracketed(uri))
    if not match or _withheld(match.group(1), match.group(2)):
        return None
    user, host = match.group(1), match.group(2)
    return f"{user}@{host}" if host else user


def _withheld(user: str, host: str | None) -> bool:
    """Whether a URI's user and host say the caller is withheld (or name nobody)."""
    return not user or user.lower() in _WITHHELD or (host is not None and host.lower() == "anonymous.invalid")


def call_key_of(dialog: Dialog) -> str:
    """What names a PBX call that gives no call-id: its dialog id and tags, as a short key."""
    text = f"{dialog.id}\0{dialog.local_tag or ''}\0{dialog.remote_tag or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def plain_call_id(call_id: str) -> str:
    """The SIP Call-ID, or a digest of it when it is long or has odd characters."""
    if _PLAIN_CALL_ID.match(call_id):
        return call_id
    return "h." + hashlib.sha256(call_id.encode()).hexdigest()[:32]


def _direction(dialog: Dialog) -> Direction:
    if dialog.direction == "initiator":
        return Direction.OUTBOUND
    if dialog.direction == "recipient":
        return Direction.INBOUND
    # No direction given: ringing with nothing else is most likely the phone
    # ringing; trying/proceeding is a request we sent; a dialog first seen
    # confirmed (Asterisk: in use without ringing) is one the user placed.
    return Direction.INBOUND if dialog.state == "early" else Direction.OUTBOUND
