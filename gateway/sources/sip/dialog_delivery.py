"""Hands a watch's signals to the call tracker without losing any to an outage.

An ``EntityWatch`` counts what it has signalled as reported. If the broker
is down, those signals never arrived (the peer gets a 503), so they are kept
and delivered first with the watch's next signals. Repeating a signal that
did arrive is harmless: the call model emits each SDK event once and merges
facts whatever the order.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable

from gateway.model import Signal
from gateway.sources.sip.dialog_watch import EntityWatch, WatchResult
from gateway.sources.sip.dialoginfo import DialogInfo
from gateway.tracker import BrokerUnavailable, CallTracker

log = logging.getLogger("gateway.sip")

# Per watch, at most this many signals wait for the broker to come back.
MAX_UNDELIVERED = 1000


class SignalDelivery:
    """A watch's signals on their way to the tracker, kept through a broker outage."""

    def __init__(self, tracker: CallTracker) -> None:
        self.tracker = tracker
        # Decides whether a signal goes to the tracker now; set by the SIP service
        # so that click-to-dial legs are never calls (sip/click_to_dial.py).
        self.screen: Callable[[Signal], bool] | None = None
        self._undelivered: weakref.WeakKeyDictionary[EntityWatch, list[Signal]] = weakref.WeakKeyDictionary()

    async def apply(self, watch: EntityWatch, info: DialogInfo, now_ms: int) -> WatchResult:
        result = watch.apply(info, now_ms)
        await self._deliver(watch, result.signals)
        return result

    async def withdraw(
        self, watch: EntityWatch, now_ms: int, dialog_ids: Iterable[str] | None = None
    ) -> None:
        await self._deliver(watch, watch.withdraw(now_ms, dialog_ids))

    async def _deliver(self, watch: EntityWatch, signals: list[Signal]) -> None:
        if self.screen is not None:
            signals = [signal for signal in signals if self.screen(signal)]
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
