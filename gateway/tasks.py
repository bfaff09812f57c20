"""Stopping a background task for sure.

Python 3.11's ``asyncio.wait_for`` drops a cancellation that arrives in the
loop turn its wait ends, and redis-py wraps every write in it: a loop whose
task is cancelled just as a Redis write completes goes on as if nothing had
happened, and whoever awaits it waits forever. ``cancel_and_wait`` cancels
again until the task is done.
"""

from __future__ import annotations

import asyncio
from typing import Any

# How long a cancelled task has to end before it is cancelled again.
RETRY_SECONDS = 0.1


async def cancel_and_wait(task: asyncio.Task[Any], retry_seconds: float = RETRY_SECONDS) -> None:
    """Cancel ``task`` until it is done; raises what it ended with, unless that is its cancellation.

    The caller's own cancellation propagates (``asyncio.wait`` does not
    swallow it), and leaves the task cancelled once at least.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_seconds)
    if not task.cancelled():
        task.result()
