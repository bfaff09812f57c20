"""Where the portals' tokens are kept, encrypted: a file (embedded default) or Redis.

Each portal's tokens are one Fernet ciphertext (``gateway.hubspot.cipher``);
neither the file nor Redis ever holds a token in the clear. An entry that
does not decrypt (the key changed) is skipped with a warning: the portal
shows as not connected and an admin reinstalls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Protocol

from gateway.hubspot.cipher import CipherError, TokenCipher
from gateway.hubspot.tokens import PortalTokens

log = logging.getLogger("gateway.hubspot")


class TokenStore(Protocol):
    async def load(self) -> dict[int, PortalTokens]: ...

    async def save(self, tokens: PortalTokens) -> None: ...

    async def close(self) -> None: ...


def seal(cipher: TokenCipher, tokens: PortalTokens) -> str:
    return cipher.encrypt(json.dumps(tokens.to_json()).encode())


def unseal(cipher: TokenCipher, portal: str, sealed: str) -> PortalTokens | None:
    try:
        return PortalTokens.from_json(json.loads(cipher.decrypt(sealed)))
    except CipherError:
        log.warning("the HubSpot tokens of portal %s do not decrypt with this key: reinstall the app", portal)
    except (ValueError, KeyError, TypeError):
        log.warning("the HubSpot tokens of portal %s are damaged: reinstall the app", portal)
    return None


class FileTokenStore:
    """A JSON file of ciphertexts by portal, written atomically with mode 0600."""

    def __init__(self, path: Path, cipher: TokenCipher) -> None:
        self.path = path
        self._cipher = cipher
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s): no HubSpot portal connected", self.path, type(exc).__name__)
            return {}
        portals = data.get("portals") if isinstance(data, dict) else None
        return (
            {str(k): v for k, v in portals.items() if isinstance(v, str)} if isinstance(portals, dict) else {}
        )

    def _write(self, portals: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        # Created 0600 from the start: the ciphertexts are no one else's business either.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": 1, "portals": portals}, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    async def load(self) -> dict[int, PortalTokens]:
        found = {}
        for portal, sealed in self._read().items():
            tokens = unseal(self._cipher, portal, sealed)
            if tokens is not None:
                found[tokens.portal_id] = tokens
        return found

    async def save(self, tokens: PortalTokens) -> None:
        async with self._lock:
            portals = self._read()
            portals[str(tokens.portal_id)] = seal(self._cipher, tokens)
            self._write(portals)

    async def close(self) -> None:
        return None


class MemoryTokenStore:
    """Tokens for this process only: the dev mode's stand-in portal, whose tokens die with it anyway."""

    def __init__(self) -> None:
        self._tokens: dict[int, PortalTokens] = {}

    async def load(self) -> dict[int, PortalTokens]:
        return dict(self._tokens)

    async def save(self, tokens: PortalTokens) -> None:
        self._tokens[tokens.portal_id] = tokens

    async def close(self) -> None:
        return None
