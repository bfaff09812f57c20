"""RFC 3903 PUBLISH decisions for ``Event: dialog``, without shared storage.

Sans-I/O: the transport hands over the request's relevant headers, the time
and a fresh random nonce; ``PublicationRules.decide`` says what to answer
and, when the publication is accepted, what kind of operation it was.

Entity tags are self-validating, so any gateway instance can check a tag
another one issued: a tag is ``<publication>.<expiry>.<nonce>.<mac>`` where
``mac`` is an HMAC-SHA256 (the configured secret) over the entity, the
publication id, the expiry (unix seconds) and the nonce. A forged, altered,
expired or other-entity tag fails the check and gets 412. The publication
id is the first tag's nonce and is kept across refreshes and modifications,
so the caller can key whatever it keeps about a publication (e.g. its
dialog ids, to end them on removal or expiry) by it.

What statelessness costs: a tag that a refresh replaced stays acceptable
until its own expiry (RFC 3903 would retire it at once). It names the same
entity and publication, so a late retransmission using it changes nothing
that the current tag could not.

The order of checks follows RFC 3903 section 6: Event (489), entity tag
(412) or a missing body on an initial PUBLISH (400), Expires (400, 423),
body type (415).

A document that reports a dialog as terminated is never refused for its
interval: RFC 3903 lets the compositor refuse a short one (423 is a MAY)
or grant it, and a publisher's last word about a call is typically short
(Kamailio's pua_dialoginfo sends ``terminated`` with ``Expires: 11``) and
not retried after a 423, so refusing it would leave the call open.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass, field
from typing import Literal

from gateway.sources.sip.dialoginfo import CONTENT_TYPE

EVENT_PACKAGE = "dialog"
MAX_EXPIRES_HEADER = 2**32 - 1
MIN_SECRET_CHARS = 16
MIN_NONCE_BYTES = 8
_MAC_BYTES = 16

PublishKind = Literal["initial", "refresh", "modify", "remove"]

_DIGITS = re.compile(r"^[0-9]{1,10}\Z")
_B64 = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


@dataclass(frozen=True)
class PublishRequest:
    """The parts of a PUBLISH that decide its answer.

    ``entity`` identifies the presentity (the AOR or the user it resolved
    to); ``expires`` and ``sip_if_match`` are the raw header values;
    ``ends_dialog`` says that the body (parsed by the caller) reports a
    dialog as terminated.
    """

    entity: str
    event: str | None
    content_type: str | None
    body: bytes
    sip_if_match: str | None = None
    expires: str | None = None
    ends_dialog: bool = False


@dataclass(frozen=True)
class TagInfo:
    publication_id: str
    expires_at_s: int


@dataclass(frozen=True)
class Decision:
    status: int
    reason: str
    # Response headers to add, in order (SIP-ETag, Expires, Min-Expires, …).
    headers: tuple[tuple[str, str], ...] = ()
    kind: PublishKind | None = None
    etag: str | None = None
    expires: int | None = None
    publication_id: str | None = None
    # Why, in one sentence, for the log line of a refusal.
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def has_state(self) -> bool:
        """The request carries a dialog-info body to parse and apply."""
        return self.kind in ("initial", "modify")


@dataclass(frozen=True)
class PublicationRules:
    secret: str
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    _key: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the PUBLISH entity-tag secret needs at least {MIN_SECRET_CHARS} characters")
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("PUBLISH expiries need 0 < min_expires <= default_expires <= max_expires")
        object.__setattr__(self, "_key", self.secret.encode())  # encoded once, not per tag

    # -- entity tags ---------------------------------------------------------------
    def issue_tag(self, entity: str, publication_id: str, expires_at_s: int, nonce: bytes) -> str:
        if len(nonce) < MIN_NONCE_BYTES:
            raise ValueError(f"an entity-tag nonce needs at least {MIN_NONCE_BYTES} bytes")
        nonce_text = _b64(nonce)
        mac = self._mac(entity, publication_id, expires_at_s, nonce_text)
        return f"{publication_id}.{expires_at_s}.{nonce_text}.{mac}"

    def check_tag(self, entity: str, tag: str, now_ms: int) -> TagInfo | None:
        """The publication a tag stands for, if it is genuine, this entity's and unexpired."""
        parts = tag.strip().split(".")
        if len(parts) != 4:
            return None
        publication_id, expiry_text, nonce_text, mac = parts
        if not (_B64.match(publication_id) and _DIGITS.match(expiry_text) and _B64.match(nonce_text)):
            return None
        expires_at_s = int(expiry_text)
        expected = self._mac(entity, publication_id, expires_at_s, nonce_text)
        if not hmac.compare_digest(expected.encode(), mac.encode()):
            return None
        if expires_at_s * 1000 <= now_ms:
            return None
        return TagInfo(publication_id=publication_id, expires_at_s=expires_at_s)

    def _mac(self, entity: str, publication_id: str, expires_at_s: int, nonce_text: str) -> str:
        message = f"sip-etag\n{entity}\n{publication_id}\n{expires_at_s}\n{nonce_text}".encode()
        # hmac.digest: OpenSSL's one-shot HMAC, without an HMAC object per tag.
        digest = hmac.digest(self._key, message, "sha256")
        return _b64(digest[:_MAC_BYTES])

    # -- the decision ----------------------------------------------------------------
    def decide(self, request: PublishRequest, now_ms: int, nonce: bytes) -> Decision:
        """What to answer to one PUBLISH; ``nonce`` is fresh randomness for a new tag."""
        package = (request.event or "").split(";", 1)[0].strip().lower()
        if package != EVENT_PACKAGE:
            return Decision(
                489,
                "Bad Event",
                (("Allow-Events", EVENT_PACKAGE),),
                detail=f"event package {request.event or '(none)'!r} is not supported, only dialog",
            )
        has_body = bool(request.body.strip())
        matched: TagInfo | None = None
        if request.sip_if_match is not None:
            matched = self.check_tag(request.entity, request.sip_if_match, now_ms)
            if matched is None:
                return Decision(
                    412,
                    "Conditional Request Failed",
                    detail="SIP-If-Match names no live publication of this entity (unknown, forged, expired)",
                )
        elif not has_body:
            return Decision(400, "Bad Request", detail="an initial PUBLISH needs a body")
        expires = self._expires(request.expires)
        if isinstance(expires, Decision):
            return expires
        if expires == 0:
            if matched is None:
                return Decision(
                    400, "Bad Request", detail="removing a publication (Expires: 0) needs SIP-If-Match"
                )
            return Decision(
                200,
                "OK",
                (("Expires", "0"),),
                kind="remove",
                expires=0,
                publication_id=matched.publication_id,
            )
        if expires < self.min_expires and not request.ends_dialog:
            return Decision(
                423,
                "Interval Too Brief",
                (("Min-Expires", str(self.min_expires)),),
                detail=f"Expires {expires} is below the minimum of {self.min_expires}",
            )
        granted = min(expires, self.max_expires)
        if has_body and not is_dialog_info(request.content_type):
            return Decision(
                415,
                "Unsupported Media Type",
                (("Accept", CONTENT_TYPE),),
                detail=f"body type {request.content_type or '(none)'!r} is not {CONTENT_TYPE}",
            )
        kind: PublishKind
        if matched is None:
            kind = "initial"
            publication_id = _b64(nonce)[:22]
        else:
            kind = "modify" if has_body else "refresh"
            publication_id = matched.publication_id
        expires_at_s = now_ms // 1000 + granted
        etag = self.issue_tag(request.entity, publication_id, expires_at_s, nonce)
        return Decision(
            200,
            "OK",
            (("SIP-ETag", etag), ("Expires", str(granted))),
            kind=kind,
            etag=etag,
            expires=granted,
            publication_id=publication_id,
        )

    def _expires(self, raw: str | None) -> int | Decision:
        if raw is None or not raw.strip():
            return self.default_expires
        text = raw.strip()
        if not _DIGITS.match(text) or int(text) > MAX_EXPIRES_HEADER:
            return Decision(400, "Bad Request", detail=f"Expires {text[:32]!r} is not a number of seconds")
        return int(text)


def is_dialog_info(content_type: str | None) -> bool:
    if content_type is None:
        return False
    # SLASH may have LWS around it (RFC 3261 §25.1); a type or subtype has none inside.
    media = content_type.split(";", 1)[0].replace(" ", "").replace("\t", "")
    return media.lower() == CONTENT_TYPE


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
