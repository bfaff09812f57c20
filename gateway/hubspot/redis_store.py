"""The token store in Redis, for several instances: one hash of ciphertexts by portal."""

from __future__ import annotations

from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.store import seal, unseal
from gateway.hubspot.tokens import PortalTokens
from gateway.redisconn import RedisClient, close, connect


class RedisTokenStore:
    def __init__(self, url: str, prefix: str, cipher: TokenCipher) -> None:
        self._redis: RedisClient = connect(url, socket_timeout=5)
        self.key = f"{prefix}:hubspot:tokens"
        self._cipher = cipher

    async def load(self) -> dict[int, PortalTokens]:
        entries = await self._redis.hgetall(self.key)
        found = {}
        for portal, sealed in entries.items():
            tokens = unseal(self._cipher, str(portal), str(sealed))
            if tokens is not None:
                found[tokens.portal_id] = tokens
        return found

    async def save(self, tokens: PortalTokens) -> None:
        await self._redis.hset(self.key, str(tokens.portal_id), seal(self._cipher, tokens))

    async def close(self) -> None:
        await close(self._redis)
