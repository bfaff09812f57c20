"""Digest authentication as a UAC (RFC 3261 §22, RFC 8760): which challenge, which nonce count."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.sources.sip.adapter import Response, digest_credentials

_PREFERENCE = {"SHA-256": 0, "MD5": 1}


@dataclass
class _Challenge:
    header: str  # Authorization or Proxy-Authorization
    value: str
    count: int = 0


class DigestClient:
    """Answers 401/407 challenges and reuses the nonce for later requests (nc grows)."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._challenge: _Challenge | None = None

    def answer(self, response: Response, method: str, uri: str) -> tuple[str, str] | None:
        """Credentials for retrying after ``response``; ``None`` if no challenge can be met."""
        if response.status_code == 401:
            name, header = "www-authenticate", "Authorization"
        elif response.status_code == 407:
            name, header = "proxy-authenticate", "Proxy-Authorization"
        else:
            return None
        offers = response.headers.get(name)

        def rank(value: str) -> int:
            for algorithm, order in _PREFERENCE.items():
                if f"algorithm={algorithm}".lower() in value.replace('"', "").replace(" ", "").lower():
                    return order
            return 1  # no algorithm parameter means MD5

        for offer in sorted(offers, key=rank):
            self._challenge = _Challenge(header, offer)
            credentials = self.authorize(method, uri)
            if credentials is not None:
                return credentials
        self._challenge = None
        return None

    def authorize(self, method: str, uri: str) -> tuple[str, str] | None:
        """Credentials from the last challenge, for a request not yet challenged."""
        challenge = self._challenge
        if challenge is None:
            return None
        challenge.count += 1
        result = digest_credentials(
            challenge.value, self.username, self.password, method, uri, challenge.count
        )
        if result is None:
            return None
        return challenge.header, result[0]
