"""Hands a watch's signals to the call tracker without losing any to an outage.

An ``EntityWatch`` counts what it has signalled as reported. If the broker
is down, those signals never arrived (the peer gets a 503), so they are kept
and delivered first with the watch's next signals. Repeating a signal that
did arrive is harmless: the call model emits each SDK event once and merges
facts whatever the order.

Before a document is applied, the calls it opens without a call-id
(Asterisk, FreeSWITCH) get their id from the shared claims
(``Coordination.claim_call``): the first instance to see a PBX call names it,
and any other instance that sees it (a subscription handed over, a restart)
uses that name, so one PBX call stays one call. A claim found on a call that
already ended (its end was reported but the claim outlived it) is replaced.
When a call ends, its claim is cleared (later, if the broker is down), so
that the next call with the same dialog id (Asterisk reuses the extension)
is a new call.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable

from gateway.model import Signal
from gateway.sources.sip.coordination import Coordination
from gateway.sources.sip.dialog_watch import EntityWatch, WatchResult
from gateway.sources.sip.dialoginfo import DialogInfo
from gateway.tracker import BrokerUnavailable, CallTracker

log = logging.getLogger("gateway.sip")

# Per watch, at most this many signals wait for the broker to come back.
MAX_UNDELIVERED = 1000
# How long a call's claim may outlive a lost end (the call model keeps a call as long).
CLAIM_SECONDS = 86400


class SignalDelivery:
    """A watch's signals on their way to the tracker, kept through a broker outage."""

    def __init__(self, tracker: CallTracker, coordination: Coordination) -> None:
        self.tracker = tracker
        self.coordination = coordination
        # Decides whether a signal goes to the tracker now; set by the SIP service
        # so that click-to-dial legs are never calls (sip/click_to_dial.py).
        # Awaited: it may hand a signal to the broker to be delivered later.
        self.screen: Callable[[Signal], Awaitable[bool]] | None = None
        self._undelivered: weakref.WeakKeyDictionary[EntityWatch, list[Signal]] = weakref.WeakKeyDictionary()
        self._unended: weakref.WeakKeyDictionary[EntityWatch, list[tuple[str, str]]] = (
            weakref.WeakKeyDictionary()
        )

    async def apply(self, watch: EntityWatch, info: DialogInfo, now_ms: int, scope: str) -> WatchResult:
        """Apply one document of the entity ``scope`` (its AOR) and deliver what it signals."""
        vanished: list[Signal] = []
        if watch.mode == "subscription" and watch.version is None and info.state == "full":
            # A new subscription's first full state: calls another instance
            # saw start may have ended while the AOR changed hands.
            try:
                claimed = await self.coordination.open_calls(scope)
            except BrokerUnavailable:
                claimed = {}
            vanished = watch.vanished(info, claimed, now_ms)
        await self._name_calls(watch, info, now_ms, scope)
        result = watch.apply(info, now_ms)
        await self._deliver(watch, vanished + result.signals)
        await self._end_claims(watch, scope)
        return result

    async def withdraw(
        self, watch: EntityWatch, now_ms: int, scope: str, dialog_ids: Iterable[str] | None = None
    ) -> None:
        await self._deliver(watch, watch.withdraw(now_ms, dialog_ids))
        await self._end_claims(watch, scope)

    async def deliver(self, watch: EntityWatch, signals: list[Signal]) -> None:
        """Deliver signals made for ``watch`` elsewhere (a publication another instance recorded)."""
        await self._deliver(watch, signals)

    async def _name_calls(self, watch: EntityWatch, info: DialogInfo, now_ms: int, scope: str) -> None:
        names: dict[str, tuple[str, str]] = {}
        claim = self.coordination.claim_call
        for dialog in watch.unnamed(info, now_ms):
            try:
                held = await claim(scope, dialog.key, dialog.proposed, CLAIM_SECONDS)
                if held != dialog.proposed and await self._ended(watch.user_id, held):
                    await self.coordination.end_call(scope, dialog.key, held)
                    held = await claim(scope, dialog.key, dialog.proposed, CLAIM_SECONDS)
            except BrokerUnavailable as exc:
                # Our own id then: the signals wait for the broker anyway.
                log.warning("sip %s: cannot settle a call id with the other instances (%s)", scope, exc)
                held = dialog.proposed
            names[dialog.dialog_id] = (dialog.key, held)
        watch.name_calls(names)

    async def _ended(self, user_id: str, call_id: str) -> bool:
        state = await self.tracker.get_call(user_id, f"sip:{call_id}")
        return state is not None and state.end is not None

    async def _end_claims(self, watch: EntityWatch, scope: str) -> None:
        pending = self._unended.pop(watch, []) + watch.ended_claims()
        for index, (key, call_id) in enumerate(pending):
            try:
                await self.coordination.end_call(scope, key, call_id)
            except BrokerUnavailable:
                self._unended[watch] = pending[index:][-MAX_UNDELIVERED:]
                return

    async def _deliver(self, watch: EntityWatch, signals: list[Signal]) -> None:
        if self.screen is not None:
            signals = [signal for signal in signals if await self.screen(signal)]
        queue = self._undelivered.pop(watch, []) + signals
        for index, signal in enumerate(queue):
            try:
                await self.tracker.observe(signal)
            except BrokerUnavailable:
                left = queue[index:]
                if len(left) > MAX_UNDELIVERED:
                    log.error(
                        "sip: broker down too long for %s; dropping %d old signals",
                        watch.user_id,
                        len(left) - MAX_UNDELIVERED,
                    )
                    left = left[-MAX_UNDELIVERED:]
                self._undelivered[watch] = left
                raise
