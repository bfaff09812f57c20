"""The guard in front of the password check: the throttle first, then a few KDF slots.

The throttle's rule is in ``gateway.auth.throttle``; which store counts
(this process, or Redis for every instance) is the broker's choice.
"""

from __future__ import annotations

import asyncio

from gateway.auth.passwords import verify_password
from gateway.auth.throttle import LocalLoginThrottle, LoginThrottle

# Spend the same KDF time on unknown logins, so timing does not tell which
# logins exist.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
# Passwords longer than this are cut before hashing: scrypt's cost grows with them.
_MAX_PASSWORD = 1024


class LoginGuard:
    def __init__(self, throttle: LoginThrottle | None = None, kdf_slots: int = 2) -> None:
        self.throttle = throttle or LocalLoginThrottle()
        # scrypt takes tens of milliseconds and 16 MiB: only a few at a time,
        # so a burst of logins cannot balloon memory.
        self._kdf_slots = asyncio.Semaphore(kdf_slots)

    async def admit(self, login: str, address: str) -> float:
        """0 if this login may be tried from this address now (counted as a failure); else the wait."""
        return await self.throttle.admit(login, address)

    async def succeeded(self, login: str, address: str) -> None:
        await self.throttle.succeeded(login, address)

    async def check_password(self, password: str, encoded: str | None) -> bool:
        """Whether ``password`` matches ``encoded`` (None: unknown login), off the event loop."""
        async with self._kdf_slots:
            ok = await asyncio.to_thread(verify_password, password[:_MAX_PASSWORD], encoded or _DUMMY_HASH)
        return ok and encoded is not None
