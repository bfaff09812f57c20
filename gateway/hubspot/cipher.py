"""Encryption of the tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

The configured key is a passphrase of any length (at least 16 characters);
HKDF-SHA256 turns it into the 32 bytes Fernet needs, so an operator can
paste any long random string.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class CipherError(ValueError):
    """Ciphertext made with another key, or damaged."""


class TokenCipher:
    def __init__(self, key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"gateway-hubspot-tokens"
        ).derive(key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def __repr__(self) -> str:
        return "TokenCipher(<key>)"

    def encrypt(self, plain: bytes) -> str:
        return self._fernet.encrypt(plain).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError):
            raise CipherError("cannot decrypt: another key, or damaged") from None
