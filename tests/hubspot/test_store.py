"""The tokens at rest: encrypted, in a 0600 file or in Redis, never readable without the key."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.redis_store import RedisTokenStore
from gateway.hubspot.store import FileTokenStore
from gateway.hubspot.tokens import PortalTokens
from tests.support import logcheck
from tests.support.servers import RedisServer

KEY = "token-key-for-tests-0123456789"
TOKENS = PortalTokens(
    100, "access-token-in-the-clear", "refresh-token-in-the-clear", 1_900_000_000.0, ("timeline",)
)


async def test_the_file_holds_no_token_in_the_clear(tmp_path: Path) -> None:
    path = tmp_path / "var" / "hubspot-tokens.json"
    await FileTokenStore(path, TokenCipher(KEY)).save(TOKENS)
    text = path.read_text()
    assert "access-token-in-the-clear" not in text and "refresh-token-in-the-clear" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_the_file_gives_the_tokens_back(tmp_path: Path) -> None:
    path = tmp_path / "hubspot-tokens.json"
    await FileTokenStore(path, TokenCipher(KEY)).save(TOKENS)
    await FileTokenStore(path, TokenCipher(KEY)).save(PortalTokens(200, "a", "r", 1.0))
    loaded = await FileTokenStore(path, TokenCipher(KEY)).load()
    assert loaded[100] == TOKENS and set(loaded) == {100, 200}


async def test_tokens_under_another_key_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "hubspot-tokens.json"
    await FileTokenStore(path, TokenCipher(KEY)).save(TOKENS)
    with logcheck.expect_log("gateway.hubspot", "portal 100 do not decrypt", required=False):
        assert await FileTokenStore(path, TokenCipher("another-key-0123456789")).load() == {}


async def test_a_missing_or_damaged_file_is_no_portal(tmp_path: Path) -> None:
    path = tmp_path / "hubspot-tokens.json"
    assert await FileTokenStore(path, TokenCipher(KEY)).load() == {}
    path.write_text("{not json")
    assert await FileTokenStore(path, TokenCipher(KEY)).load() == {}


def test_the_tokens_stay_out_of_reprs() -> None:
    assert "in-the-clear" not in repr(TOKENS)
    assert KEY not in repr(TokenCipher(KEY))


async def test_redis_holds_the_tokens_encrypted(redis_server: RedisServer) -> None:
    store = RedisTokenStore(redis_server.url, "gwtest", TokenCipher(KEY))
    try:
        await store.save(TOKENS)
        raw = await store._redis.hget(store.key, "100")
        assert raw and "in-the-clear" not in raw
        assert (await store.load()) == {100: TOKENS}
    finally:
        await store.close()
