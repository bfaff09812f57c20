"""The two hot paths to Redis, spoken directly on redis-py's connections.

redis-py still makes each connection (TLS, AUTH, HELLO, the primary a
Sentinel names) and its pool still lends them; what goes over them here is
written with ``resp.pack`` and read with ``resp.Replies``, a chunk at a
time, instead of redis-py's parse per reply behind a retry wrapper:

- ``exchange``: commands written at once, their replies read together
  (the advance script's pipelines, ``calls``);
- ``Subscriber``: the pub/sub connection of one server or a Sentinel
  set-up's primary (``fanout``).

redis-py keeps a connection's ``StreamReader`` private (``_reader``); its
own parsers read no further than each reply they parse, so between
commands everything unread is in that reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.broker.redis.resp import ProtocolError, Push, Replies, ReplyError, Value, pack

_READ_SIZE = 65536
# A pub/sub connection silent this long is asked for a PING; silent as long
# again after that, it is taken for lost.
IDLE_SECONDS = 30.0


def _reader(conn: AbstractConnection) -> asyncio.StreamReader:
    if conn._reader is None:
        raise RedisConnectionError("redis connection is closed")
    return conn._reader


async def _read(reader: asyncio.StreamReader, replies: Replies) -> list[Value]:
    """What arrived next: at least one whole value."""
    while True:
        data = await reader.read(_READ_SIZE)
        if not data:
            raise RedisConnectionError("redis closed the connection")
        replies.feed(data)
        try:
            values = replies.take()
        except ProtocolError as exc:
            raise RedisConnectionError(f"redis sent something unreadable: {exc}") from None
        if values:
            return values


async def exchange(
    pool: ConnectionPool, commands: Iterable[Iterable[str | int]]
) -> list[Value | ResponseError]:
    """Send the commands in one write; their replies in order (an error reply as ``ResponseError``).

    On a failure mid-way (a lost connection, the caller's deadline) the
    connection is dropped: replies still on their way must not be read as
    the next caller's.
    """
    packed = [pack(command) for command in commands]
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        reader = _reader(conn)
        await conn.send_packed_command(packed, check_health=False)
        out: list[Value] = []
        replies = Replies()
        while len(out) < len(packed):
            # Pushes (e.g. RESP3 notifications) are not replies.
            out.extend(v for v in await _read(reader, replies) if not isinstance(v, Push))
        if len(out) > len(packed) or replies.pending:
            raise RedisConnectionError("redis sent more than was asked for")
        if any(isinstance(v, ReplyError) and str(v).startswith("READONLY") for v in out):
            # A primary demoted by a failover: the pool's next connect asks
            # Sentinel again for the primary (as redis-py's own reads do).
            await conn.disconnect(nowait=True)
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.release(conn)
    return [ResponseError(str(v)) if isinstance(v, ReplyError) else v for v in out]


class Subscriber:
    """A pub/sub connection of its own: (un)subscribe, and read what arrives, in batches.

    Never reconnects by itself: a lost connection is an error the listener
    sees, so that it checks whether Redis lost data before going on
    (``LossRecovery._recover``). Hence it reads from the socket it opened
    and sends on no other (redis-py would connect again to send).
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.StreamReader | None = None
        self._replies = Replies()
        self._pinged = False

    async def open(self) -> None:
        self._conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        self._reader = _reader(self._conn)

    async def close(self) -> None:
        conn, self._conn, self._reader = self._conn, None, None
        if conn is not None:
            # Never back into the pool while subscribed.
            try:
                await conn.disconnect(nowait=True)
            finally:
                await self._pool.release(conn)

    async def subscribe(self, *channels: str) -> None:
        await self._send("SUBSCRIBE", *channels)

    async def unsubscribe(self, *channels: str) -> None:
        await self._send("UNSUBSCRIBE", *channels)

    async def _send(self, *args: str) -> None:
        conn = self._conn
        if conn is None or conn._reader is not self._reader:
            raise RedisConnectionError("redis pub/sub is not connected")
        await conn.send_packed_command(pack(args), check_health=False)

    async def read(self) -> list[list[Any]]:
        """The next messages and confirmations, each ``[kind, channel, data or count]``.

        Other replies (to PING) are left out; an error reply is raised.
        """
        reader = self._reader
        if reader is None:
            raise RedisConnectionError("redis pub/sub is not connected")
        while True:
            try:
                async with asyncio.timeout(IDLE_SECONDS):
                    values = await _read(reader, self._replies)
            except TimeoutError:
                if self._pinged:
                    raise RedisConnectionError("redis did not answer a ping") from None
                self._pinged = True
                await self._send("PING")
                continue
            self._pinged = False
            for value in values:
                if isinstance(value, ReplyError):
                    raise ResponseError(str(value))
            # RESP2 has no pushes: a message there is an array like any reply.
            pushed = [v for v in values if isinstance(v, list) and len(v) == 3]
            if pushed:
                return pushed
