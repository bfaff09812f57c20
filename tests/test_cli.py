"""The ``gateway`` command as an operator uses it."""

from __future__ import annotations

import asyncio
import os
import re
import signal as signals
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import free_port
from tests.support.sse import SseStream


def gateway(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def add_user(users: str, login: str, password: str) -> subprocess.CompletedProcess[str]:
    return gateway(
        "users",
        "--users-file",
        users,
        "add",
        login,
        "--tenant",
        "1",
        "--password-stdin",
        stdin=password + "\n",
    )


def test_users_can_be_added_listed_and_removed(tmp_path: Path) -> None:
    users = str(tmp_path / "users.json")
    added = gateway(
        "users",
        "--users-file",
        users,
        "add",
        "ann",
        "--tenant",
        "42",
        "--hubspot-user-id",
        "7",
        "--aor",
        "sip:2001@pbx.example.com",
        "--number",
        "555-555-0111",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert added.returncode == 0, added.stderr
    listed = gateway("users", "--users-file", users, "list")
    assert "ann\ttenant=42\thubspot=7\taors=sip:2001@pbx.example.com\tnumbers=+15555550111" in listed.stdout
    assert gateway("users", "--users-file", users, "remove", "ann").returncode == 0
    assert gateway("users", "--users-file", users, "list").stdout == ""


def test_a_user_can_be_given_a_pbx_extension(tmp_path: Path) -> None:
    users = str(tmp_path / "users.json")
    args = ("users", "--users-file", users, "add", "ann", "--tenant", "42", "--extension", "2001")
    added = gateway(*args, "--password-stdin", stdin="a long password\n")
    assert added.returncode == 0, added.stderr
    assert "\textension=2001" in gateway("users", "--users-file", users, "list").stdout


def test_adding_a_user_twice_fails_with_a_clear_message(tmp_path: Path) -> None:
    users = str(tmp_path / "users.json")
    for _ in range(2):
        result = add_user(users, "ann", "a long password")
    assert result.returncode == 2
    assert "user ann already exists" in result.stderr


def test_short_passwords_are_refused(tmp_path: Path) -> None:
    result = add_user(str(tmp_path / "u.json"), "ann", "short")
    assert result.returncode == 2
    assert "at least 8 characters" in result.stderr


def test_invalid_configuration_stops_the_start_with_every_problem(tmp_path: Path) -> None:
    result = gateway("serve", env={"GATEWAY_PORT": "nope", "GATEWAY_HISTORY_SIZE": "1"})
    assert result.returncode == 2
    assert "GATEWAY_PORT='nope'" in result.stderr
    assert "GATEWAY_HISTORY_SIZE='1': must be between 10 and 100000" in result.stderr


async def test_dev_server_prints_a_working_demo_login_and_stops_promptly_with_open_streams(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--dev",
        "--port",
        str(port),
        "--users-file",
        str(tmp_path / "users.json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    banner = ""
    try:
        while "send a call:" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "the server exited: " + banner
            banner += line.decode()
        password = re.search(r"demo user:\s+demo / (\S+)", banner)
        secret = re.search(r"ingest secret:\s+(\S+)", banner)
        assert password and secret
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            login = await http.post("/api/login", json={"login": "demo", "password": password.group(1)})
            assert login.status_code == 200
            token = login.json()["token"]
            async with SseStream(http, "/api/stream", {"authorization": f"Bearer {token}"}) as stream:
                sent = await asyncio.to_thread(
                    gateway,
                    "signal",
                    "--url",
                    base,
                    "--user",
                    "demo",
                    "--call",
                    "cli-1",
                    "--phase",
                    "ringing",
                    "--from",
                    "+15555550123",
                    env={"GATEWAY_INGEST_SECRET": secret.group(1)},
                )
                assert sent.returncode == 0, sent.stderr
                event = await stream.next(10)
                assert event.json["payload"]["fromNumber"] == "+15555550123"
                proc.send_signal(signals.SIGTERM)
                # uvicorn re-raises the signal once shut down, as a well-behaved daemon does.
                assert await asyncio.wait_for(proc.wait(), 4) in (0, -signals.SIGTERM)
                await asyncio.wait_for(stream.ended.wait(), 4)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
