"""Fetching a recording from where the provider keeps it, a Range at a time (httpx, streaming).

Each provider's credentials go only to its own API host:

- Twilio: HTTP basic auth with the account SID and auth token (Twilio's
  "Recordings" docs: media URLs need it when "Enforce HTTP Auth on Media
  URLs" is on), to the host of ``GATEWAY_TWILIO_API_URL``;
- Telnyx: none, its recording URLs are presigned, for ten minutes; with
  ``GATEWAY_TELNYX_API_KEY`` set, a fresh one is asked for each time from
  "Retrieve a call recording" (``GET /v2/recordings/{id}`` with the API key,
  ``data.download_urls``), so a recording plays however late;
- Vonage: ``Authorization: Bearer`` with an application JWT (Vonage's
  "Recording" guide: ``GET recording_url`` with a JWT), to the host of
  ``GATEWAY_VONAGE_API_URL`` and Vonage's own ``*.nexmo.com`` / ``*.vonage.com``;
- a PBX: basic auth with the tenant's ``username``/``password``, to the host
  of its ``url_template``.

The caller's Range goes on to the provider. A provider that answers 206
is passed through; one that ignores the Range (200 with a length) is cut
here to the range asked for; 416 is 416. Nothing here logs a URL's query,
a token or a credential.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.dial.vonage_route import application_token
from gateway.ops.httplog import redact_request_queries
from gateway.parsing import parse_decimal
from gateway.recordings import ranges
from gateway.recordings.location import Recording
from gateway.recordings.settings import RecordingSettings
from gateway.sources.webhooks.common import WebhookError
from gateway.sources.webhooks.recording import https_url

log = logging.getLogger("gateway.recordings")

_CHUNK = 64 * 1024


class MediaUnavailable(Exception):
    """The provider would not give the media: the status to answer and one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Media:
    """What to answer: status, headers, and the body's bytes (to be read once, then closed)."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes] | None = None
    _response: httpx.Response | None = field(default=None, repr=False)

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()


@dataclass(frozen=True)
class ProviderAccess:
    """The credentials of each provider, when configured (never logged: no repr)."""

    twilio_account_sid: str = ""
    twilio_auth_token: str = field(default="", repr=False)
    twilio_api_url: str = "https://api.twilio.com"
    telnyx_api_key: str = field(default="", repr=False)
    telnyx_api_url: str = "https://api.telnyx.com"
    vonage_application_id: str = ""
    vonage_key: rsa.RSAPrivateKey | None = field(default=None, repr=False)
    vonage_api_url: str = "https://api.nexmo.com"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _safe(url: str) -> str:
    """The URL without its query (a presigned URL's query is its credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class MediaFetcher:
    def __init__(
        self, access: ProviderAccess, settings: RecordingSettings, timeout_seconds: float = 10.0
    ) -> None:
        self._access = access
        self._settings = settings
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds), follow_redirects=True, max_redirects=3
        )
        redact_request_queries()

    async def close(self) -> None:
        await self._http.aclose()

    def _credentials(self, recording: Recording) -> tuple[httpx.Auth | None, dict[str, str]]:
        """The provider's credentials for the media URL, only when it is the provider's own host."""
        host, access = _host(recording.media_url), self._access
        if recording.provider == "twilio":
            if (
                access.twilio_account_sid
                and access.twilio_auth_token
                and host == _host(access.twilio_api_url)
            ):
                return httpx.BasicAuth(access.twilio_account_sid, access.twilio_auth_token), {}
        elif recording.provider == "vonage":
            ours = host == _host(access.vonage_api_url) or host.endswith((".nexmo.com", ".vonage.com"))
            if access.vonage_key is not None and ours:
                token = application_token(access.vonage_application_id, access.vonage_key, int(time.time()))
                return None, {"authorization": f"Bearer {token}"}
        elif recording.provider == "pbx" and recording.portal_id is not None:
            pbx = self._settings.pbx.get(recording.portal_id)
            if pbx is not None and pbx.username and host == _host(pbx.url_template):
                return httpx.BasicAuth(pbx.username, pbx.password), {}
        return None, {}

    async def _fresh_telnyx_url(self, recording: Recording) -> str:
        """A newly presigned URL of a Telnyx recording (its WAV, else its MP3)."""
        url = f"{self._access.telnyx_api_url}/v2/recordings/{quote(recording.recording_id, safe='')}"
        headers = {"authorization": f"Bearer {self._access.telnyx_api_key}", "accept": "application/json"}
        try:
            response = await self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise MediaUnavailable(502, f"telnyx could not be reached ({type(exc).__name__})") from None
        if response.status_code == 404:
            raise MediaUnavailable(404, "telnyx no longer has the recording")
        if response.status_code != 200:
            raise MediaUnavailable(502, f"telnyx answered {response.status_code} for the recording")
        try:
            urls = response.json()["data"]["download_urls"]
            return https_url(urls.get("wav") or urls.get("mp3"), "download_urls")
        except (ValueError, KeyError, TypeError, AttributeError, WebhookError):
            raise MediaUnavailable(502, "telnyx's recording has no download URL") from None

    async def open(self, recording: Recording, requested: ranges.Requested | None) -> Media:
        """The media, or the range of it asked for; ``MediaUnavailable`` when the provider fails."""
        if recording.provider == "telnyx" and self._access.telnyx_api_key:
            recording = replace(recording, media_url=await self._fresh_telnyx_url(recording))
        auth, headers = self._credentials(recording)
        if requested is not None:
            headers["range"] = requested.header()
        request = self._http.build_request("GET", recording.media_url, headers=headers)
        try:
            response = await self._http.send(request, auth=auth or httpx.USE_CLIENT_DEFAULT, stream=True)
        except httpx.TimeoutException:
            raise MediaUnavailable(504, f"{recording.provider} did not send the recording in time") from None
        except httpx.HTTPError as exc:
            log.warning(
                "recording of %s at %s: %s",
                recording.external_id,
                _safe(recording.media_url),
                type(exc).__name__,
            )
            raise MediaUnavailable(502, f"{recording.provider} could not be reached") from None
        try:
            return self._answer(recording, requested, response)
        except BaseException:
            await response.aclose()
            raise

    def _answer(
        self, recording: Recording, requested: ranges.Requested | None, response: httpx.Response
    ) -> Media:
        status = response.status_code
        if status in (404, 410):
            raise MediaUnavailable(404, f"{recording.provider} no longer has the recording")
        if status in (401, 403):
            log.warning(
                "%s refused the gateway's credentials for %s (%s)",
                recording.provider,
                _safe(recording.media_url),
                status,
            )
            raise MediaUnavailable(
                502, f"{recording.provider} refused the gateway's credentials for the recording"
            )
        upstream_type = response.headers.get("content-type", "")
        content_type = upstream_type if upstream_type.startswith("audio/") else recording.content_type
        headers = {
            "content-type": content_type,
            "accept-ranges": "bytes",
            "cache-control": "private, no-store",
        }
        size = parse_decimal(response.headers.get("content-length", ""))
        if status == 416:
            headers["content-range"] = response.headers.get("content-range", "bytes */*")
            return Media(416, headers, _Body.empty(), response)
        if status == 206:
            headers["content-range"] = response.headers.get("content-range", "")
            if size is not None:
                headers["content-length"] = str(size)
            return Media(206, headers, _Body(response).whole(), response)
        if status != 200:
            raise MediaUnavailable(502, f"{recording.provider} answered {status} for the recording")
        if requested is None or size is None:
            # No range, or one we cannot place without the length: the whole file (RFC 9110 allows it).
            if size is not None:
                headers["content-length"] = str(size)
            return Media(200, headers, _Body(response).whole(), response)
        span = ranges.resolve(requested, size)
        if span is None:
            headers["content-range"] = ranges.unsatisfied(size)
            return Media(416, headers, _Body.empty(), response)
        headers["content-range"] = span.content_range()
        headers["content-length"] = str(span.length)
        return Media(206, headers, _Body(response).cut(span.start, span.length), response)


class _Body:
    def __init__(self, response: httpx.Response | None) -> None:
        self._response = response

    @classmethod
    def empty(cls) -> AsyncIterator[bytes]:
        return cls(None).whole()

    async def whole(self) -> AsyncIterator[bytes]:
        if self._response is None:
            return
        async for chunk in self._response.aiter_bytes(_CHUNK):
            yield chunk

    async def cut(self, start: int, length: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` .. ``start + length - 1`` of the provider's whole file."""
        assert self._response is not None
        skip, left = start, length
        async for chunk in self._response.aiter_bytes(_CHUNK):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            piece = chunk[skip : skip + left]
            skip = 0
            left -= len(piece)
            yield piece
            if left <= 0:
                return
