"""Which tenants' PBX management connections this instance holds: one live instance each.

The same ownership as SIP subscriptions (``gateway.sources.ownership``,
docs/scaling.md): every instance heartbeats, a tenant's connection
(``pbx:<source>:<tenant>``) belongs to the live instance the rendezvous
hashing names, and it is started only once its lease is ours and released
only after the connection was stopped. So with several instances each PBX
gets one connection; when its holder dies, another takes the lease once it
ran out and connects, learning the calls in progress (the call identity is
the PBX's own, so nothing is told twice); on a graceful stop the holder
leaves the live set first, disconnects, then releases, and the next holder
connects at its next step.

On the embedded broker (``leases.shared`` False) this process holds every
connection, started at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from gateway.sources.ownership import Leases, Ownership
from gateway.tasks import cancel_and_wait
from gateway.tracker import BrokerUnavailable

log = logging.getLogger("gateway.pbx")

# Without a [sip] table (whose owner_heartbeat_seconds and owner_ttl_seconds
# apply to both), SIP's defaults.
DEFAULT_HEARTBEAT_SECONDS = 1.0
DEFAULT_TTL_SECONDS = 5.0


class PbxLink(Protocol):
    """One tenant's connection (``AmiConnection``, ``EslConnection``)."""

    @property
    def lease_name(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def connected(self) -> asyncio.Event: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PbxOwner:
    name = "pbx ownership"

    def __init__(
        self,
        links: Sequence[PbxLink],
        leases: Leases,
        heartbeat_seconds: float,
        ttl_seconds: float,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.links = {link.lease_name: link for link in links}
        self.leases = leases
        self.ownership = Ownership(leases, heartbeat_seconds, ttl_seconds, label="pbx")
        # Closes the leases' connections to the broker, when no SIP service shares them.
        self.close = close
        self._task: asyncio.Task[None] | None = None
        self._handing: dict[str, asyncio.Task[None]] = {}  # lease name -> its hand-over

    def held(self) -> list[str]:
        """The lease names whose connections run here."""
        if not self.leases.shared:
            return sorted(self.links)
        return sorted(self.ownership.held)

    async def readiness(self) -> tuple[bool, str]:
        """Always ready (a PBX that is down is no reason to stop serving); says what is held here."""
        held = [self.links[name] for name in self.held()]
        states = ", ".join(
            f"{link.label}: {'logged in' if link.connected.is_set() else 'connecting'}" for link in held
        )
        detail = f"{len(held)}/{len(self.links)} PBX connections held here ({states or 'none'})"
        if self.leases.shared:
            detail += f", shared by {max(1, len(self.ownership.live))} instances"
        return True, detail

    async def start(self) -> None:
        if not self.leases.shared:
            for link in self.links.values():
                await link.start()
            return
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name="pbx-ownership")

    async def _keep(self) -> None:
        while True:
            try:
                await self.step()
            except BrokerUnavailable as exc:
                # Nobody can take a lease meanwhile: the connections held go on.
                log.warning("pbx ownership: the broker is unavailable, nothing changes hands: %s", exc)
            except Exception:
                log.exception("pbx ownership: step failed")
            await asyncio.sleep(self.ownership.heartbeat_seconds)

    async def step(self) -> None:
        step = await self.ownership.step(self.links)
        for name in sorted(step.lost):
            log.warning("pbx: %s is held by another instance now: disconnecting", self.links[name].name)
            await self.links[name].stop()
        for name in sorted(step.giving_up - set(self._handing)):
            # Beside the step, so that the renewals of the others are not held up.
            log.info("pbx: %s is another instance's now: handing it over", self.links[name].name)
            self._handing[name] = asyncio.create_task(self._hand_over(name), name=f"pbx-hand-over-{name}")
        for name in sorted(step.gained):
            log.info("pbx: %s is held here now: connecting", self.links[name].name)
            await self.links[name].start()

    async def _hand_over(self, name: str) -> None:
        try:
            await self.links[name].stop()
            with contextlib.suppress(BrokerUnavailable):
                await self.ownership.release([name])
        finally:
            self._handing.pop(name, None)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        if self.leases.shared:
            if self.ownership.held:
                log.info("pbx: stopping: handing over %s", ", ".join(sorted(self.ownership.held)))
            # Leave first, so that the others count these connections as theirs already.
            with contextlib.suppress(BrokerUnavailable):
                await self.ownership.leave()
        for handing in list(self._handing.values()):
            with contextlib.suppress(Exception):
                await handing
        for link in self.links.values():
            await link.stop()
        if self.leases.shared:
            with contextlib.suppress(BrokerUnavailable):
                await self.ownership.release(list(self.ownership.held))
            log.info("pbx: stopped, leases released")
        if self.close is not None:
            await self.close()
