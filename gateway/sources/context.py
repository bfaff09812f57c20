"""What a source is given: the settings, the door to the tracker, the users, the metrics.

Nothing of the web framework or the broker: a source turns what telephony
says into ``Signal``s and hands them to the tracker. What a source adds to
the running gateway (a component to start, a readiness check, a reaction to
a users-file reload) is wired by ``gateway.assemble``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import Settings
from gateway.ops.metrics import Metrics
from gateway.tracker import CallTracker
from gateway.users.directory import Directory


@dataclass(frozen=True)
class SourceContext:
    settings: Settings
    tracker: CallTracker
    metrics: Metrics
    # The users as they are now: the users file may be reloaded at any time.
    directory: Callable[[], Directory]
