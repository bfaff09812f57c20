"""Seeded random and hostile requests to every route that reads a body or headers.

The gateway runs as `gateway serve` runs it (uvicorn on loopback) and gets
a few thousand requests written byte by byte: mutations of valid bodies
(signed as the sender would sign them, so they reach the parsers), random
and adversarial JSON (deep nesting, huge numbers, NaN, lone surrogates,
NUL, wrong types), forms, and odd heads (Content-Length that lies or is
not a number, duplicate headers, bytes that are not ASCII, chunked bodies).

It fails on a 5xx caused by the input, a request left without an answer,
a gateway that stops answering /healthz, or (through the harness's log
check) any traceback or ERROR the gateway logged. The seed is fixed;
GATEWAY_FUZZ_SEED picks another, and every failure names its seed and
request number.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest

from gateway.auth.ingest_signature import sign
from tests.support.cpaas import (
    PUBLIC_URL,
    TWILIO_PATH,
    TWILIO_TOKEN,
    telnyx_body,
    telnyx_headers,
    twilio_json_request,
    twilio_params,
    twilio_sign,
    vonage_body,
    vonage_headers,
    webhook_settings,
)
from tests.support.harness import INGEST_SECRET, Client, make_settings, running_gateway, signal

SEED = int(os.environ.get("GATEWAY_FUZZ_SEED", "20261201"))
REQUESTS = 2400
CONCURRENCY = 8
HEALTH_EVERY = 300
ANSWER_SECONDS = 5.0


@dataclass
class Request:
    route: str
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    # The head promises more body than is sent: no answer is owed.
    incomplete: bool = False
    # An event stream: only its status line is read.
    stream: bool = False
    notes: list[str] = field(default_factory=list)

    def header(self, name: str, value: str | bytes) -> None:
        self.headers.append((name.encode(), value.encode("utf-8") if isinstance(value, str) else value))

    def describe(self) -> str:
        head = ", ".join(f"{n.decode('latin-1')}: {v[:60]!r}" for n, v in self.headers)
        return (
            f"{self.method} {self.target[:120]} [{'; '.join(self.notes)}] "
            f"headers {{{head}}} body {self.body[:200]!r}"
        )


# -- JSON text: valid, adversarial, and not quite JSON ---------------------------
STRINGS = [
    "",
    "alice",
    "+15555550101",
    "sip:1001@pbx.test",
    "\u0000",
    "a\u0000b",
    "²³",
    "١٢٣",
    "\u202eevil",
    "😀" * 10,
    "é" * 300,
    "x" * 5000,
    "../../etc/passwd",
    "<script>",
    "%s%n",
    " ",
    "ringing",
    "inbound",
    "completed",
]


def json_text(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.55:
        return rng.choice(
            [
                "null",
                "true",
                "false",
                "0",
                "-0",
                "1",
                "-1",
                "1.5",
                "1e400",
                "-1e-400",
                "NaN",
                "Infinity",
                "-Infinity",
                str(2**63),
                str(-(2**63) - 1),
                "9" * rng.choice([19, 20, 300, 4301]),
                "1" + "0" * 30,
                '"\\ud800"',
                '"\\udc00x"',
                '"\\ud83d\\ude00"',
                '"\\u0000"',
                '"tab\tinside"',  # a raw control character: not JSON
                json.dumps(rng.choice(STRINGS)),
                json.dumps(rng.choice(STRINGS), ensure_ascii=False),
                json.dumps(str(rng.randint(-(10**6), 10**12))),
            ]
        )
    if roll < 0.7:
        n = rng.choice([31, 32, 33, 100, 1000, 5000])
        opener = rng.choice(["[", '{"a":'])
        closer = "]" if opener == "[" else "}"
        return opener * n + "1" + closer * rng.choice([n, 0, n // 2])
    if roll < 0.85:
        return "[" + ",".join(json_text(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    keys = [rng.choice(STRINGS) for _ in range(rng.randint(0, 4))]
    return "{" + ",".join(f"{json.dumps(k)}:{json_text(rng, depth + 1)}" for k in keys) + "}"


def object_text(fields: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        at = rng.randrange(len(out))
        action = rng.randrange(5)
        if action == 0:
            out[at] = rng.randrange(256)
        elif action == 1:
            del out[at:]
        elif action == 2:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif action == 3:
            out[at:at] = out[at : at + rng.randint(1, 64)]
        else:
            out[at:at] = rng.choice([b"\x00", b"\xff\xfe", b"\xc3", b'"', b"\\", b"[", b"{", b"\xed\xa0\x80"])
    return bytes(out)


def body_from(rng: random.Random, template: dict[str, object]) -> tuple[bytes, str]:
    """A body made from a valid one, and what was done to it."""
    fields = {k: json.dumps(v) for k, v in template.items()}
    roll = rng.random()
    if roll < 0.12:
        return json.dumps(template).encode(), "valid"
    if roll < 0.45:
        name = rng.choice(list(fields))
        fields[name] = json_text(rng)
        return object_text(fields).encode(), f"{name} replaced"
    if roll < 0.52:
        fields.pop(rng.choice(list(fields)))
        return object_text(fields).encode(), "field dropped"
    if roll < 0.58:
        fields[rng.choice(STRINGS)] = json_text(rng)
        return object_text(fields).encode(), "field added"
    if roll < 0.72:
        return json_text(rng).encode("utf-8", "surrogatepass"), "random JSON"
    if roll < 0.86:
        return mutate_bytes(rng, json.dumps(template).encode()), "bytes mutated"
    if roll < 0.90:
        return json.dumps(template).encode(rng.choice(["utf-16", "utf-32", "utf-8-sig"])), "other encoding"
    if roll < 0.95:
        pairs = {rng.choice(STRINGS): rng.choice(STRINGS) for _ in range(rng.randint(0, 5))}
        return urlencode(pairs).encode(), "form"
    return b"", "empty"


# -- routes ---------------------------------------------------------------------
@dataclass
class Credentials:
    token: str
    calls: list[str]


Maker = Callable[[random.Random, Credentials], Request]


def _json_request(route: str, path: str, body: bytes, note: str) -> Request:
    request = Request(route, "POST", path, [], body, notes=[note])
    request.header("content-type", "application/json")
    return request


def _authorization(rng: random.Random, creds: Credentials) -> str | bytes | None:
    return rng.choice(
        [
            f"Bearer {creds.token}",
            f"Bearer {creds.token}",
            f"bearer  {creds.token} ",
            None,
            "Bearer",
            "Basic YWxpY2U6eA==",
            f"Bearer {creds.token[:-2]}",
            "Bearer v1." + "A" * 3000 + ".x",
            b"Bearer v1.\xc3\xa9.\xff",
            "Bearer " + ".".join(["v1", "e30", ""]),
        ]
    )


def login(rng: random.Random, creds: Credentials) -> Request:
    template: dict[str, object] = {
        "login": rng.choice(["alice", "mallory"]),
        "password": "not-the-password",
        "portalId": 100,
        "hubspotUserId": 501,
    }
    body, note = body_from(rng, template)
    return _json_request("login", "/api/login", body, note)


def authed(route: str, path: str, template: dict[str, object]) -> Maker:
    def make(rng: random.Random, creds: Credentials) -> Request:
        body, note = body_from(rng, template)
        request = _json_request(route, path, body, note)
        auth = _authorization(rng, creds)
        if auth is not None:
            request.header("authorization", auth)
        return request

    return make


def engagement(rng: random.Random, creds: Credentials) -> Request:
    call = rng.choice([*creds.calls, "ingest:none", "é/../x", "%00", "x" * 300, "😀"])
    make = authed("engagement", f"/api/calls/{quote(call, safe='')}/engagement", {"engagementId": 4242})
    return make(rng, creds)


def stream(rng: random.Random, creds: Credentials) -> Request:
    query = {
        "ticket": rng.choice(["", "v1.a.b", "v1.\u00e9.x", creds.token, "x" * 2000]),
        "lastEventId": rng.choice(["", "0-0", "1-1", "²-1", "9" * 5000 + "-0", "-", "1-", "a-b"]),
    }
    request = Request("stream", "GET", "/api/stream?" + urlencode(query), [], stream=True)
    auth = _authorization(rng, creds)
    if auth is not None:
        request.header("authorization", auth)
    if rng.random() < 0.5:
        request.header("last-event-id", rng.choice(["0-0", "1-2", "\u00b2", "9" * 400, "x"]))
    return request


def ingest(rng: random.Random, creds: Credentials) -> Request:
    one = signal(f"fz{rng.randrange(50)}", rng.choice(["ringing", "answered", "ended"]))
    template: dict[str, object] = rng.choice([one, {"signals": [one, signal("fz-b", "ringing")]}])
    body, note = body_from(rng, template)
    request = _json_request("ingest", "/api/ingest", body, note)
    ts = int(time.time())
    if rng.random() < 0.75:
        request.header("x-gateway-timestamp", str(ts))
        request.header("x-gateway-signature", sign(INGEST_SECRET, ts, body))
    else:
        request.notes.append("unsigned")
        request.header("x-gateway-timestamp", rng.choice([str(ts), "²", "9" * 400, "", "-1"]))
        request.header("x-gateway-signature", rng.choice(["v1=00", "v1=" + "0" * 64, "", "v2=x", "\u00e9"]))
    return request


def twilio(rng: random.Random, creds: Credentials) -> Request:
    if rng.random() < 0.3:
        body, note = body_from(rng, dict(twilio_params(f"CA{rng.randrange(9)}", "ringing")))
        path, body, headers = twilio_json_request(body)
        request = Request("twilio", "POST", path, [], body, notes=["json " + note])
        for name, value in headers.items():
            request.header(name, value)
        return request
    params = twilio_params(
        f"CA{rng.randrange(9)}", rng.choice(["ringing", "in-progress", "completed", "busy"])
    )
    for _ in range(rng.randint(0, 3)):
        name = rng.choice([*params, *STRINGS])
        params[name] = rng.choice([*STRINGS, "Mon, 99 Foo 2024", "-5", "9" * 30])
    body = urlencode(params).encode()
    request = Request("twilio", "POST", TWILIO_PATH, [], body, notes=["form"])
    request.header("content-type", "application/x-www-form-urlencoded")
    request.header("x-twilio-signature", twilio_sign(TWILIO_TOKEN, PUBLIC_URL + TWILIO_PATH, params))
    return request


def telnyx(rng: random.Random, creds: Credentials) -> Request:
    event = rng.choice(["call.initiated", "call.answered", "call.hangup", "call.bridged"])
    doc = json.loads(telnyx_body(event, f"leg{rng.randrange(9)}"))
    template = rng.choice([doc, doc["data"], doc["data"]["payload"]])
    body, note = body_from(rng, template)
    if template is not doc:
        # Mutate an inner object, then put it back where it belongs.
        inner = body.decode("utf-8", "surrogateescape")
        outer = (
            '{"data":' + inner + "}"
            if template is doc["data"]
            else '{"data":{"event_type":' + json.dumps(event) + ',"payload":' + inner + "}}"
        )
        body = outer.encode("utf-8", "surrogateescape")
    request = Request("telnyx", "POST", "/webhooks/telnyx/call-events", [], body, notes=[note])
    for name, value in telnyx_headers(body).items():
        request.header(name, value)
    return request


def vonage(rng: random.Random, creds: Credentials) -> Request:
    status = rng.choice(["started", "ringing", "answered", "completed", "busy"])
    template = json.loads(vonage_body(f"uuid-{rng.randrange(9)}", status))
    body, note = body_from(rng, template)
    request = Request("vonage", "POST", "/webhooks/vonage/voice-events", [], body, notes=[note])
    headers = vonage_headers(body)
    if rng.random() < 0.2:
        headers["authorization"] = rng.choice(["Bearer a.b.c", "Bearer ..", "Bearer " + "e30." * 3, "Bearer"])
        request.notes.append("bad token")
    for name, value in headers.items():
        request.header(name, value)
    return request


MAKERS: list[tuple[Maker, int]] = [
    (login, 3),
    (authed("refresh", "/api/session/refresh", {"unused": 1}), 2),
    (authed("stream-ticket", "/api/stream-ticket", {"unused": 1}), 2),
    (stream, 2),
    (ingest, 5),
    (twilio, 3),
    (telnyx, 3),
    (vonage, 3),
    (engagement, 3),
    (authed("dial", "/api/dial", {"number": "+15555550123"}), 2),
]


# -- the head: framing and headers ---------------------------------------------
def frame(rng: random.Random, request: Request) -> bytes:
    """The request's bytes, its head sometimes bent out of shape."""
    headers = list(request.headers)
    body = request.body
    length: list[bytes] = [str(len(body)).encode()]
    chunked = False
    if rng.random() < 0.3:
        bend = rng.randrange(10)
        if bend == 0:
            length = []
            request.notes.append("no length")
        elif bend == 1:
            if rng.random() < 0.2:
                length = [b"  %d\t" % len(body)]  # spaces around a header value do not count
                request.notes.append("length padded")
            else:
                length = [rng.choice([b"abc", "\u00b2".encode(), b"-1", b"+5", b"1 2", b"0x10", b"9" * 30])]
                request.notes.append("length not a number")
        elif bend == 2 and body:
            length = [str(rng.randrange(len(body))).encode()]
            request.notes.append("length short")
        elif bend == 3:
            length = [str(len(body) + rng.randint(1, 1000)).encode()]
            request.incomplete = True
            request.notes.append("length long")
        elif bend == 4:
            length = [str(len(body)).encode(), str(len(body) + 1).encode()]
            request.notes.append("two lengths")
        elif bend == 5:
            length = []
            chunked = True
            request.notes.append("chunked")
        elif bend == 6 and headers:
            headers.append(rng.choice(headers))
            request.notes.append("header repeated")
        elif bend == 7:
            headers.append((b"x-odd", rng.choice([b"\xe9\xff", "é😀".encode(), b"a\x01b", b"\x7f"])))
            request.notes.append("non-ASCII header")
        elif bend == 8:
            headers.append(
                (b"x-forwarded-for", rng.choice([b"1.2.3.4, ::1", b"garbage", b"\xff", b",,,", b"9" * 500]))
            )
            request.notes.append("forwarded-for")
        else:
            headers.append(
                (b"content-type", rng.choice([b"application/json; charset=utf-16", b"text/plain", b";;;"]))
            )
            request.notes.append("content-type")
    lines = [f"{request.method} {request.target} HTTP/1.1".encode(), b"host: gateway.test"]
    lines += [name + b": " + value for name, value in headers]
    if request.method == "POST":
        lines += [b"content-length: " + value for value in length]
    if chunked:
        lines.append(b"transfer-encoding: chunked")
        cut = rng.randint(0, len(body))
        body = (
            b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:cut], body[cut:]) if part)
            + b"0\r\n\r\n"
        )
    lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def exchange(host: str, port: int, request: Request, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        if request.incomplete:
            # Nothing more is coming: the server sees the end of the input.
            writer.write_eof()
        async with asyncio.timeout(ANSWER_SECONDS):
            if request.stream:
                return await reader.readline()
            return await reader.read()
    finally:
        writer.close()


def verdict(request: Request, answer: bytes) -> str | None:
    """Why this answer is wrong, or None."""
    if not answer:
        return None if request.incomplete else "closed without an answer"
    status_line = answer.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ")
    if len(parts) < 2 or not parts[1].isdigit():
        return f"not an HTTP answer: {status_line[:80]!r}"
    status = int(parts[1])
    if status >= 500 and not (request.route == "dial" and status == 501):
        return f"answered {status}: {answer[:300]!r}"
    return None


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(make_settings(tmp_path, **webhook_settings())) as client:
        yield client


async def test_random_and_hostile_requests_get_no_5xx_no_traceback_and_leave_the_gateway_up(
    gw: Client,
) -> None:
    rng = random.Random(SEED)
    token = await gw.login("alice")
    calls = [f"ingest:fz{n}" for n in range(3)]
    for call in calls:
        assert (await gw.ingest(signal(call.removeprefix("ingest:"), "ringing"))).status_code == 202
    creds = Credentials(token, calls)
    makers = [maker for maker, weight in MAKERS for _ in range(weight)]
    url = urlsplit(gw.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    failures: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(number: int, request: Request, data: bytes) -> None:
        async with gate:
            try:
                problem = verdict(request, await exchange(host, port, request, data))
            except TimeoutError:
                problem = None if request.incomplete else f"no answer within {ANSWER_SECONDS} s"
            except (ConnectionError, OSError) as exc:
                problem = None if request.incomplete else f"connection failed: {exc!r}"
        if problem:
            failures.append(f"seed {SEED} request {number}: {problem}\n    {request.describe()}")

    started = time.monotonic()
    for first in range(0, REQUESTS, HEALTH_EVERY):
        batch = []
        for number in range(first, min(first + HEALTH_EVERY, REQUESTS)):
            request = rng.choice(makers)(rng, creds)
            batch.append(one(number, request, frame(rng, request)))
        await asyncio.gather(*batch)
        health = await gw.http.get("/healthz")
        assert health.status_code == 200, f"seed {SEED}: /healthz answered {health.status_code} after {first}"
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {REQUESTS} requests went wrong:\n" + "\n".join(failures[:20])
    # Bounded: the fuzzer must stay a few seconds of the suite.
    assert elapsed < 30, f"{REQUESTS} requests took {elapsed:.1f} s"
