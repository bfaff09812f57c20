"""Failed logins counted once for every instance on one Redis (docs/operations.md#failed-logins).

Two gateways on one real redis-server; the client's address is set with
``X-Forwarded-For``, which the gateway believes from loopback (its default
``FORWARDED_ALLOW_IPS``), as it would from the proxy in front.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.auth.throttle import LoginLimits
from tests.support.harness import PASSWORDS, Client, make_settings, running_gateway
from tests.support.servers import RedisServer

DESK = "10.0.0.1"  # where alice signs in
STRANGER = "10.0.0.66"


@contextlib.asynccontextmanager
async def two_instances(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[tuple[Client, Client]]:
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        yield one, two


async def try_login(gateway: Client, address: str, password: str, login: str = "alice") -> int:
    response = await gateway.http.post(
        "/api/login",
        json={"login": login, "password": password},
        headers={"x-forwarded-for": address},
    )
    return response.status_code


async def test_guesses_on_two_instances_share_one_allowance(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    per_pair = LoginLimits().per_pair
    async with two_instances(tmp_path, redis_server) as (one, two):
        answers = [await try_login((one, two)[n % 2], STRANGER, "guess-guess") for n in range(per_pair)]
        held = [await try_login(gw, STRANGER, "guess-guess") for gw in (one, two)]
    assert answers == [401] * per_pair
    assert held == [429, 429]


async def test_a_stranger_guessing_elsewhere_never_locks_the_user_out(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # A small allowance, so that using it up takes few password checks.
    limits = LoginLimits(per_pair=3, per_login=12)
    async with two_instances(tmp_path, redis_server) as (one, two):
        for gw in (one, two):
            gw.gateway.logins.throttle.limits = limits
        assert await try_login(one, DESK, PASSWORDS["alice"]) == 200
        # From enough addresses to use up the login's whole allowance, each
        # address within its own, spread over both instances.
        addresses = [f"10.9.{n // 200}.{n % 200}" for n in range(limits.per_login // limits.per_pair)]
        paced = asyncio.Semaphore(4)  # as many as the two instances check at once

        async def guess(gateway: Client, address: str) -> int:
            async with paced:
                return await try_login(gateway, address, "guess-guess")

        each = range(limits.per_pair)
        guesses = [guess((one, two)[n % 2], address) for n, address in enumerate(addresses) for _ in each]
        assert set(await asyncio.gather(*guesses)) == {401}
        from_elsewhere = [await try_login(gw, "10.8.0.1", PASSWORDS["alice"]) for gw in (one, two)]
        from_her_desk = [await try_login(gw, DESK, PASSWORDS["alice"]) for gw in (one, two)]
        bob = await try_login(two, "10.8.0.1", PASSWORDS["bob"], login="bob")
    assert from_elsewhere == [429, 429]  # a new address waits while the login is under attack
    assert from_her_desk == [200, 200]
    assert bob == 200


async def test_an_address_spraying_logins_on_two_instances_is_held_on_both(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    limits = LoginLimits(per_address=4)
    async with two_instances(tmp_path, redis_server) as (one, two):
        for gw in (one, two):
            gw.gateway.logins.throttle.limits = limits
        sprayed = [await try_login((one, two)[n % 2], STRANGER, "guess", login=f"user{n}") for n in range(4)]
        held = [await try_login(gw, STRANGER, PASSWORDS["bob"], login="bob") for gw in (one, two)]
        elsewhere = await try_login(one, DESK, PASSWORDS["bob"], login="bob")
    assert sprayed == [401] * 4
    assert held == [429, 429]
    assert elsewhere == 200
