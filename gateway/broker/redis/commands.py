"""One exchange with Redis under the gateway's own deadline, Redis trouble made ``BrokerUnavailable``."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from redis.exceptions import RedisClusterException, RedisError

from gateway.broker.base import BrokerUnavailable

# Every command runs under this deadline (our own, not redis-py's
# socket_timeout, which on Python 3.11 costs a task per command sent).
COMMAND_SECONDS = 5.0


# What Redis trouble looks like: a refused or lost connection, a Redis error
# reply, or the deadline (``TimeoutError`` is an ``OSError``).
REDIS_TROUBLE = (RedisError, RedisClusterException, OSError, AttributeError)


def unavailable(exc: BaseException) -> BrokerUnavailable:
    """Redis trouble (one of ``REDIS_TROUBLE``) as the broker reports it; anything else raised again.

    The one place where Redis trouble becomes ``BrokerUnavailable``.
    """
    if isinstance(exc, AttributeError):
        # redis-py's cluster client (8.1) can use a connection another task
        # is tearing down while a node restarts ("'NoneType' object has no
        # attribute 'writelines'"): that is a lost connection too. Only when
        # raised inside redis-py; one of ours stays a bug.
        if not raised_in_redis_py(exc):
            raise exc
        return BrokerUnavailable(f"redis: connection lost ({exc})")
    if isinstance(exc, REDIS_TROUBLE):
        return BrokerUnavailable(f"redis: {exc}")
    raise exc


@contextlib.asynccontextmanager
async def command() -> AsyncIterator[None]:
    """One exchange with Redis under our deadline, Redis trouble made ``BrokerUnavailable``."""
    try:
        async with asyncio.timeout(COMMAND_SECONDS):
            yield
    except REDIS_TROUBLE as exc:
        raise unavailable(exc) from exc


def raised_in_redis_py(exc: BaseException) -> bool:
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame is not None and f"{os.sep}redis{os.sep}" in frame.tb_frame.f_code.co_filename
