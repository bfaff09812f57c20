"""This instance's share of the AORs: the shared ``gateway.sources.ownership``, logging as SIP."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.sources.ownership import Ownership as SharedOwnership
from gateway.sources.ownership import Step

__all__ = ["Ownership", "Step"]


@dataclass
class Ownership(SharedOwnership):
    label: str = "sip"
