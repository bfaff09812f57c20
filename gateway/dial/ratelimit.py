"""The per-user dial limit: dials per user in a sliding window, kept by the broker.

With Redis the window is one key per user that every instance counts in
(atomically, on Redis's clock), so the limit holds however requests are
spread; with the memory broker it is the process's own. The limit is a
brake on a runaway page or script; the allow-list is the guard against
fraud.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    dials: int = 10
    seconds: float = 60.0


def retry_after_seconds(wait: float) -> int:
    """A wait as ``Retry-After`` says it: whole seconds, at least one."""
    return max(1, math.ceil(wait))
