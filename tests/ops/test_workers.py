"""``gateway serve --workers N`` (docs/operations.md#workers).

Real processes: one ``gateway serve --workers 2`` (a supervisor and its two
workers) on a real redis-server, watching the fake PBX's AORs over UDP.
The PBX's accepted SUBSCRIBEs tell which worker holds which AOR (each
worker's own SIP port is in its Contact); ``/proc`` tells the workers' pids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.auth.ingest_signature import sign
from gateway.ops import workers
from gateway.ops.workers import GIVE_UP_AFTER, MAX_DELAY_SECONDS, STABLE_SECONDS, Backoff
from tests.support.fakepbx import FakePbx, Publisher, dialog_info
from tests.support.fleet import PASSWORD, SECRET, Fleet, Instance, extensions, fleet
from tests.support.servers import RedisServer, free_port
from tests.support.sse import SseStream

AORS = 12  # the chance that the hashing gives one worker all of them: 2 in 4096
ADMIN_TOKEN = "workers-test-admin-token-0123456789"


def workers_of(gateway: Instance) -> list[int]:
    assert gateway.proc is not None
    pid = gateway.proc.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def two_free_ports(kind: int = socket.SOCK_STREAM) -> int:
    """The first of two free consecutive ports on loopback."""
    while True:
        base = free_port(kind)
        with socket.socket(socket.AF_INET, kind) as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", base + 1))
            return base


def free_for_udp_and_tcp() -> int:
    while True:
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return port


@contextlib.asynccontextmanager
async def supervised(
    tmp_path: Path, redis_server: RedisServer, *args: str, sip_tcp: bool = False
) -> AsyncIterator[tuple[Fleet, Instance]]:
    async with fleet(tmp_path, redis_server, AORS) as group:
        env = {**group.env, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
        gateway = Instance("gw", tmp_path, env, serve_args=("--workers", "2", *args), sip_tcp=sip_tcp)
        if sip_tcp:
            gateway.sip_port = free_for_udp_and_tcp()
        group.instances.append(gateway)
        await gateway.start(group.pbx)
        yield group, gateway


async def watched_once_each_by_both(group: Fleet, timeout: float = 30) -> dict[str, tuple[str, int]]:
    """Until each AOR has one live dialog and the dialogs come from two addresses; AOR -> contact.

    Only the PBX's view shows it, so this polls.
    """
    deadline = time.monotonic() + timeout
    while True:
        live = group.timeline().live_now()
        contacts = {user: next(iter(d.values())) for user, d in live.items() if len(d) == 1}
        if len(contacts) == AORS == len(live) and len(set(contacts.values())) == 2:
            return contacts
        assert time.monotonic() < deadline, {user: list(d.values()) for user, d in live.items()}
        await asyncio.sleep(0.1)


async def login(gateway: Instance, user: str) -> dict[str, str]:
    assert gateway.http is not None
    answer = await gateway.http.post("/api/login", json={"login": f"u{user}", "password": PASSWORD})
    return {"authorization": f"Bearer {answer.json()['token']}"}


def ringing(user: str) -> dict[str, str]:
    return {"id": f"call-{user}", "state": "early", "direction": "recipient", "remote": "sip:+15555550199@x"}


async def test_two_workers_each_subscribe_a_share_of_the_aors_and_receive_their_notifies(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    user = extensions(AORS)[0]
    base = two_free_ports(socket.SOCK_DGRAM)
    async with supervised(tmp_path, redis_server, "--worker-sip-port", str(base)) as (group, gateway):
        contacts = await watched_once_each_by_both(group)
        assert gateway.http is not None
        async with SseStream(gateway.http, "/api/stream", await login(gateway, user)) as stream:
            # Each NOTIFY goes to the Contact of its dialog: the worker that holds it answers.
            answers = await asyncio.gather(*(group.pbx.notify(u, [ringing(u)]) for u in extensions(AORS)))
            event = await stream.next()
        timeline = group.timeline()
    assert {port for _, port in contacts.values()} == {base, base + 1}  # their own ports
    assert [answer.status for answer in answers] == [200] * AORS
    assert event.json["type"] == "incomingCall"
    assert {timeline.most_at_once(u) for u in extensions(AORS)} == {1}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_publications_from_two_pbx_addresses_are_accepted_refreshed_and_reach_the_streams(
    tmp_path: Path, redis_server: RedisServer, transport: str
) -> None:
    users = extensions(AORS)[:2]
    async with (
        supervised(tmp_path, redis_server, sip_tcp=transport == "tcp") as (group, gateway),
        FakePbx(transport) as one,
        FakePbx(transport) as other,
    ):
        await watched_once_each_by_both(group)
        assert gateway.http is not None
        # Two source addresses (over TCP two connections): the kernel may
        # give them to different workers, each its own.
        publishers = [Publisher(pbx, ("127.0.0.1", gateway.sip_port)) for pbx in (one, other)]
        async with contextlib.AsyncExitStack() as stack:
            streams = [
                await stack.enter_async_context(
                    SseStream(gateway.http, "/api/stream", await login(gateway, u))
                )
                for u in users
            ]
            aors = [f"sip:{u}@pbx.test" for u in users]
            published = await asyncio.gather(
                *(
                    publisher.publish(aor, dialog_info(aor, 1, [ringing(user)]))
                    for publisher, aor, user in zip(publishers, aors, users, strict=True)
                )
            )
            events = await asyncio.gather(*(stream.next() for stream in streams))
        refreshed = await asyncio.gather(
            *(
                publisher.publish(aor, etag=answer.get("sip-etag"), expires=600)
                for publisher, aor, answer in zip(publishers, aors, published, strict=True)
            )
        )
    assert [answer.status for answer in published + refreshed] == [200] * 4
    assert [event.json["type"] for event in events] == ["incomingCall"] * 2


async def both_serving(base: int, timeout: float = 30) -> None:
    """Until each worker answers on its own port, bound right after the shared one.

    A process shows it listens only by answering, so this polls.
    """
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        for port in (base, base + 1):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"no worker answers on {port}"
                await asyncio.sleep(0.05)


async def ingest_ringing(gateway: Instance, user: str) -> int:
    """One signed signal through the shared port; its status."""
    assert gateway.http is not None
    signal_ = {"callId": "c-1", "user": f"u{user}", "direction": "inbound", "phase": "ringing"}
    body = json.dumps(signal_).encode()
    now = int(time.time())
    signed = {"x-gateway-timestamp": str(now), "x-gateway-signature": sign(SECRET, now, body)}
    answer = await gateway.http.post(
        "/api/ingest", content=body, headers={"content-type": "application/json", **signed}
    )
    return answer.status_code


async def test_a_signal_ingested_on_the_shared_port_reaches_the_streams_on_each_worker(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    base = two_free_ports()
    user = extensions(AORS)[0]
    async with (
        supervised(tmp_path, redis_server, "--worker-http-port", str(base)) as (_group, gateway),
        contextlib.AsyncExitStack() as stack,
    ):
        await both_serving(base)
        headers = await login(gateway, user)
        streams = []
        for port in (base, base + 1):  # one stream on each worker's own port
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}"))
            streams.append(await stack.enter_async_context(SseStream(http, "/api/stream", headers)))
        status = await ingest_ringing(gateway, user)
        events = await asyncio.gather(*(stream.next() for stream in streams))
    assert status == 202
    assert [event.json["type"] for event in events] == ["incomingCall"] * 2


async def test_the_shared_http_port_spreads_the_connections_over_both_workers(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    base = two_free_ports()
    user = extensions(AORS)[0]
    opened = 12  # the chance that the hashing gives one worker all of them: 2 in 4096
    async with (
        supervised(tmp_path, redis_server, "--worker-http-port", str(base)) as (_group, gateway),
        contextlib.AsyncExitStack() as stack,
    ):
        assert gateway.http is not None
        await both_serving(base)
        headers = await login(gateway, user)
        # One connection each, on the shared port.
        for _ in range(opened):
            await stack.enter_async_context(SseStream(gateway.http, "/api/stream", headers))
        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        deadline = time.monotonic() + 20
        while True:  # the instances' status records are written every 2 s
            status = (await gateway.http.get("/admin/status.json", headers=admin)).json()
            by_instance = status["streams"].get(f"u{user}", {}).get("byInstance", {})
            if sum(by_instance.values()) == opened:
                break
            assert time.monotonic() < deadline, status["streams"]
            await asyncio.sleep(0.2)
    assert len(by_instance) == 2


async def test_each_worker_also_answers_alone_on_its_own_port(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    base = two_free_ports()
    user = extensions(AORS)[0]
    async with supervised(tmp_path, redis_server, "--worker-http-port", str(base)) as (group, gateway):
        await watched_once_each_by_both(group)
        headers = await login(gateway, user)
        first = httpx.AsyncClient(base_url=f"http://127.0.0.1:{base}", timeout=10)
        async with first, SseStream(first, "/api/stream", headers):
            second = f"http://127.0.0.1:{base + 1}/metrics"
            on_first, on_second = await asyncio.gather(first.get("/metrics"), first.get(second))
    assert "gateway_streams_open 1.0" in on_first.text
    assert "gateway_streams_open 0.0" in on_second.text


async def test_a_killed_worker_is_started_again_and_takes_its_share_again(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with supervised(tmp_path, redis_server) as (group, gateway):
        await watched_once_each_by_both(group)
        victim = workers_of(gateway)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while len(now := workers_of(gateway)) != 2 or victim in now:
            assert time.monotonic() < deadline, now
            await asyncio.sleep(0.1)
        contacts = await watched_once_each_by_both(group)
        log = gateway.log()
    assert f"(pid {victim}) was killed by SIGKILL" in log
    assert len(set(contacts.values())) == 2


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_a_stop_signal_stops_the_supervisor_and_every_worker_gracefully(
    tmp_path: Path, redis_server: RedisServer, stop: signal.Signals
) -> None:
    async with supervised(tmp_path, redis_server) as (group, gateway):
        await watched_once_each_by_both(group)
        pids = workers_of(gateway)
        assert gateway.proc is not None
        gateway.proc.send_signal(stop)
        # Each worker unsubscribes the AORs it held on its way out.
        unsubscribed = await asyncio.gather(*(group.pbx.unsubscribed(u, 20) for u in extensions(AORS)))
        status = await asyncio.wait_for(gateway.proc.wait(), 30)
    assert status == 0
    assert len(unsubscribed) == AORS
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_the_workers_stop_gracefully_when_their_supervisor_is_killed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with supervised(tmp_path, redis_server) as (group, gateway):
        await watched_once_each_by_both(group)
        gateway.kill()
        # Each worker sees it go and stops gracefully: it unsubscribes the AORs it held.
        unsubscribed = await asyncio.gather(*(group.pbx.unsubscribed(u, 20) for u in extensions(AORS)))
    assert len(unsubscribed) == AORS


def serve(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve", *args],
        env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_more_than_one_worker_without_redis_is_refused_in_one_line(tmp_path: Path) -> None:
    done = serve("--workers", "2", "--port", str(free_port()), env={})
    assert done.returncode == 2
    assert done.stderr == (
        "gateway: --workers 2 needs GATEWAY_REDIS_URL: the embedded broker is per process\n"
    )


def test_a_port_already_in_use_is_refused_before_any_worker_starts(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"GATEWAY_REDIS_URL": redis_server.url, "GATEWAY_SECRET": SECRET}
        done = serve("--workers", "2", "--port", str(port), env=env)
    assert done.returncode == 2
    assert done.stderr == f"gateway: --workers: tcp 127.0.0.1:{port}: in use\n"


def test_the_supervisor_gives_up_with_status_1_when_a_worker_keeps_dying(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    users = tmp_path / "users.json"
    users.write_text("[]")  # no {"users": [...]}: each worker stops at once
    env = {
        "GATEWAY_REDIS_URL": redis_server.url,
        "GATEWAY_SECRET": SECRET,
        "GATEWAY_USERS_FILE": str(users),
    }
    done = serve("--workers", "2", "--port", str(free_port()), env=env, timeout=120)
    assert done.returncode == 1
    assert f"{GIVE_UP_AFTER} times in a row" in done.stderr
    assert "a worker keeps dying: stopping the others" in done.stderr


def test_a_worker_that_cannot_be_started_is_tried_again_then_given_up_in_log_lines(tmp_path: Path) -> None:
    # posix_spawn refused (no processes or memory left, the interpreter
    # replaced by an upgrade): the supervisor's back-off, not a traceback.
    script = tmp_path / "supervisor.py"
    script.write_text(
        "import logging, sys\n"
        "from gateway.ops import workers\n"
        "logging.basicConfig()\n"
        "workers.FIRST_DELAY_SECONDS = 0.01\n"
        f"sys.executable = {str(tmp_path / 'gone' / 'python')!r}\n"
        "sys.exit(workers.Supervisor([], 2).run())\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    gone = f"[Errno 2] No such file or directory: {str(tmp_path / 'gone' / 'python')!r}"
    assert f"worker 1 could not be started ({gone}); trying again in" in done.stderr
    assert f"could not be started ({gone}), {GIVE_UP_AFTER} times in a row" in done.stderr
    assert "a worker keeps dying: stopping the others" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_that_dies_young_is_started_again_later_each_time() -> None:
    backoff = Backoff()
    delays = [backoff.after_death(1.0) or 0.0 for _ in range(GIVE_UP_AFTER - 1)]
    assert delays == sorted(delays) and len(set(delays)) == len(delays)
    assert delays[0] > 0 and delays[-1] <= MAX_DELAY_SECONDS


def test_a_worker_that_keeps_dying_young_is_given_up() -> None:
    backoff = Backoff()
    for _ in range(GIVE_UP_AFTER - 1):
        backoff.after_death(1.0)
    assert backoff.after_death(1.0) is None


def test_a_worker_that_lived_long_starts_the_back_off_over() -> None:
    backoff = Backoff()
    first = backoff.after_death(1.0)
    for _ in range(GIVE_UP_AFTER - 2):
        backoff.after_death(1.0)
    assert backoff.after_death(STABLE_SECONDS) == first


def test_a_worker_that_outlives_its_kill_is_given_up_not_waited_for_in_a_busy_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A process in uninterruptible sleep outlives SIGKILL for a while; here a
    # real process whose signals do not reach it stands for one.
    stuck = subprocess.Popen(["sleep", "60"])
    kill = os.kill
    try:
        monkeypatch.setattr(workers, "STOP_SECONDS", 0.2)
        monkeypatch.setattr(os, "kill", lambda pid, sig: None)
        supervisor = workers.Supervisor([], 1)
        supervisor.workers[0].pid = stuck.pid
        started = time.process_time()
        with caplog.at_level("ERROR", "gateway.workers"):
            assert supervisor._stop() == 1
        assert time.process_time() - started < 0.5  # it waited, it did not spin
        assert str(stuck.pid) in caplog.text
    finally:
        kill(stuck.pid, signal.SIGKILL)
        stuck.wait()


def test_a_worker_without_pidfd_watches_its_supervisor_all_the_same(tmp_path: Path) -> None:
    # pidfd_open refused (a kernel before 5.3, a container's seccomp filter):
    # the worker must neither stop at once nor outlive its supervisor.
    script = tmp_path / "worker.py"
    script.write_text(
        "import errno, os, sys, time\n"
        "def refused(pid): raise OSError(errno.ENOSYS, 'no pidfd_open')\n"
        "os.pidfd_open = refused\n"
        "from gateway.ops import workers\n"
        "workers.end_with(os.getppid())\n"
        "print('watching', flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = tmp_path / "supervisor.py"
    parent.write_text(
        f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, {str(script)!r}])\ntime.sleep(60)\n"
    )
    supervisor = subprocess.Popen([sys.executable, str(parent)], stdout=subprocess.PIPE, text=True)
    try:
        assert supervisor.stdout is not None
        assert select.select([supervisor.stdout], [], [], 10)[0], "the worker said nothing"
        assert supervisor.stdout.readline() == "watching\n"  # not stopped at once
        [worker] = [
            int(child)
            for child in Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children").read_text().split()
        ]
        supervisor.kill()
        supervisor.wait()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{worker}").exists()
    finally:
        supervisor.kill()
        supervisor.wait()
