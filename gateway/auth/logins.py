"""The guard in front of the password check: throttles first, then a few KDF slots.

Per login, against guessing one user's password; per address, with a
higher allowance (a proxy puts many users behind one address), against
spraying many logins. A try counts as a failure before the check, which
awaits: concurrent guesses cannot all slip past the limit; a success takes
its count back.
"""

from __future__ import annotations

import asyncio

from gateway.auth.passwords import verify_password
from gateway.auth.throttle import FailureThrottle

# Spend the same KDF time on unknown logins, so timing does not tell which
# logins exist.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
# Passwords longer than this are cut before hashing: scrypt's cost grows with them.
_MAX_PASSWORD = 1024


class LoginGuard:
    def __init__(self, per_login: int = 10, per_address: int = 50, kdf_slots: int = 2) -> None:
        self.per_login = FailureThrottle(limit=per_login)
        self.per_address = FailureThrottle(limit=per_address)
        # scrypt takes tens of milliseconds and 16 MiB: only a few at a time,
        # so a burst of logins cannot balloon memory.
        self._kdf_slots = asyncio.Semaphore(kdf_slots)

    def retry_after(self, login: str, address: str, now: float) -> float:
        """Seconds until this login from this address may be tried again (0: now)."""
        return max(self.per_login.retry_after([login], now), self.per_address.retry_after([address], now))

    def attempt(self, login: str, address: str, now: float) -> None:
        self.per_login.failed([login], now)
        self.per_address.failed([address], now)

    def succeeded(self, login: str, address: str) -> None:
        self.per_login.succeeded([login])
        self.per_address.refund(address)

    async def check_password(self, password: str, encoded: str | None) -> bool:
        """Whether ``password`` matches ``encoded`` (None: unknown login), off the event loop."""
        async with self._kdf_slots:
            ok = await asyncio.to_thread(verify_password, password[:_MAX_PASSWORD], encoded or _DUMMY_HASH)
        return ok and encoded is not None
