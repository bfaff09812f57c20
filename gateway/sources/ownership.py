"""This instance's share of what only one instance may hold: heartbeats, leases, what to start and stop.

Used for SIP AORs (one SUBSCRIBE dialog each, ``sip/subscribe_client.py``)
and for PBX management connections (one per tenant, ``pbxowner.py``).
``ownership_rules`` says which names are ours among the live instances;
the leases (``Leases``) make sure that no two instances hold one at once: a
name is started only once its lease is ours, and a lease is released only
after what it guards was stopped. Each step renews the heartbeat and every
lease held in two round trips.

While the broker cannot be reached nothing changes here: nobody can take a
lease over meanwhile, and what is held keeps running. A lease that ran out
is taken again if it is free (a Redis restarted empty), and dropped, with
what it guards, if another instance took it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.sources.ownership_rules import plan


class Leases(Protocol):
    """Live instances and leases with fencing tokens (``gateway.broker`` implements it)."""

    # This process's id among the live instances; new at every start.
    instance_id: str
    # False: a single process that holds everything (no leases needed).
    shared: bool

    async def heartbeat(self, ttl_seconds: float) -> list[str]:
        """Say this instance is alive for ``ttl_seconds``; the ids of the live instances."""
        ...

    async def leave(self) -> None:
        """Leave the live instances at once (a graceful stop)."""
        ...

    async def acquire(self, name: str, ttl_seconds: float) -> int | None:
        """Take (or keep) the lease on ``name``: its fencing token, or None when another holds it."""
        ...

    async def renew(self, leases: Mapping[str, int], ttl_seconds: float) -> list[str]:
        """Extend the leases held (name -> token); the names whose lease was lost."""
        ...

    async def release(self, name: str, token: int) -> None:
        """Give the lease up, if ``token`` still holds it."""
        ...


@dataclass(frozen=True)
class Step:
    live: tuple[str, ...]
    gained: frozenset[str]
    lost: frozenset[str]  # leases that ran out or were taken: stop without releasing
    giving_up: frozenset[str]  # ours to hand over: stop, then ``release``


@dataclass
class Ownership:
    coordination: Leases
    heartbeat_seconds: float
    ttl_seconds: float
    held: dict[str, int] = field(default_factory=dict)  # name -> fencing token
    live: tuple[str, ...] = ()
    label: str = "ownership"  # the log lines' prefix, and the logger's name under ``gateway.``

    @property
    def me(self) -> str:
        return self.coordination.instance_id

    async def step(self, wanted: Iterable[str]) -> Step:
        """One round: say we live, keep our leases, and take what is ours and free."""
        coordination = self.coordination
        live = await coordination.heartbeat(self.ttl_seconds)
        self.live = tuple(sorted(live))
        lost: set[str] = set()
        for name in await coordination.renew(self.held, self.ttl_seconds):
            # Run out with nobody taking it (a slow step, a Redis restarted
            # empty): ours again at once, and what it guards carries on.
            token = await coordination.acquire(name, self.ttl_seconds)
            if token is not None:
                self.held[name] = token
                continue
            logging.getLogger(f"gateway.{self.label}").warning(
                "%s: the lease on %s was lost; another instance holds it now", self.label, name
            )
            del self.held[name]
            lost.add(name)
        decided = plan(wanted, live, self.me, self.held)
        gained: set[str] = set()
        for name in sorted(decided.acquire):
            token = await coordination.acquire(name, self.ttl_seconds)
            if token is not None:
                self.held[name] = token
                gained.add(name)
        return Step(self.live, frozenset(gained), frozenset(lost), decided.release)

    async def release(self, names: Iterable[str]) -> None:
        for name in names:
            token = self.held.pop(name, None)
            if token is not None:
                await self.coordination.release(name, token)

    async def leave(self) -> None:
        """Stop counting as live, so that the others take our names as we let them go."""
        await self.coordination.leave()
