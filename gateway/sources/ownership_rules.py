"""Which live instance holds which shared thing: rendezvous hashing (pure).

The things are SIP AORs (one subscription each) and PBX management
connections (one per tenant's AMI or event socket). Every instance computes
the same owner from the same set of live instances, with no coordination:
the instance with the highest weight for the name. When an instance joins,
only the names for which it now weighs most move to it (about 1/n of them);
when one leaves or dies, only its names move, spread over the others.
Leases (``ownership.py``) make the move safe: the new owner starts only
once the old one released the name or its lease expired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


def weight(instance: str, name: str) -> int:
    digest = hashlib.blake2b(f"{instance}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(name: str, instances: Iterable[str]) -> str | None:
    """The instance that should hold ``name``; None when no instance is live."""
    best: tuple[int, str] | None = None
    for instance in instances:
        candidate = (weight(instance, name), instance)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


@dataclass(frozen=True)
class Plan:
    acquire: frozenset[str]  # ours by the hashing, not held yet
    release: frozenset[str]  # held, but another live instance's now (or no longer wanted)


def plan(wanted: Iterable[str], live: Iterable[str], me: str, held: Iterable[str]) -> Plan:
    """What this instance should take and give up, given who is live."""
    instances = set(live) | {me}  # a heartbeat answered without us still counts us
    mine = {name for name in wanted if owner(name, instances) == me}
    holding = set(held)
    return Plan(acquire=frozenset(mine - holding), release=frozenset(holding - mine))
