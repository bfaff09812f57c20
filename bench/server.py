"""The system under test: a real ``gateway serve`` process (and redis-server).

The gateway runs in its own process, as in production, so the bench's
client does not share its CPU or event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from gateway.auth.passwords import hash_password
from gateway.auth.tokens import TokenSigner
from gateway.ops.workers import STOP_SECONDS
from gateway.users.directory import Directory, User


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_users(path: Path, count: int) -> list[str]:
    """``count`` users sharing one password hash: one scrypt run, not ``count``.

    Nobody logs in with it; the bench mints session tokens with the server's
    secret instead.
    """
    shared_hash = hash_password(secrets.token_urlsafe(12))
    ids = [f"bench{i}" for i in range(count)]
    Directory(User(id=i, login=i, tenant=1, password_hash=shared_hash) for i in ids).save(path)
    return ids


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    pid: int
    secret: str
    ingest_secret: str
    redis_pid: int | None = None

    def server_pids(self) -> list[int]:
        """The processes that serve: the gateway, or with ``--workers`` its workers."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(child) for child in children] or [self.pid]

    def token(self, user_id: str, ttl: int = 3600) -> str:
        return TokenSigner(self.secret).issue(user_id, "session", int(time.time()), ttl)


async def _http_status(host: str, port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        line = await reader.readline()
        return int(line.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def _wait_ready(
    proc: subprocess.Popen[bytes], host: str, port: int, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited with status {proc.returncode}:\n{_tail(log_path)}")
        with contextlib.suppress(OSError, IndexError, ValueError):
            if await _http_status(host, port, "/readyz") == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the gateway was not ready within {timeout:.0f}s")


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (make test installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [
            *(exe, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"redis://127.0.0.1:{port}/0"


def _spawn_gateway(env: dict[str, str], log_path: Path, workers: int) -> subprocess.Popen[bytes]:
    """``gateway serve`` exactly as an operator runs it, configured by environment."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _wait_workers(host: str, port: int, admin_token: str, workers: int, timeout: float) -> None:
    """Until every worker reports to the operator page: one ready worker answers ``/readyz``
    before the others listen, and streams opened then would all land on it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"GET /admin/status.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                f"Authorization: Bearer {admin_token}\r\n\r\n".encode()
            )
            answer = await reader.read()
        finally:
            writer.close()
        _, _, body = answer.partition(b"\r\n\r\n")
        with contextlib.suppress(ValueError):
            if len(json.loads(body).get("instances", [])) >= workers:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the {workers} workers did not all start within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.asynccontextmanager
async def gateway_process(
    users: int,
    redis: bool,
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
    workers: int = 1,
) -> AsyncIterator[Target]:
    """A gateway on a free loopback port with ``users`` users; yields how to reach it."""
    workdir = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        users_file = workdir / "users.json"
        write_users(users_file, users)
        host, port = "127.0.0.1", free_port()
        secret, ingest_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_HOST=host,
            GATEWAY_PORT=str(port),
            GATEWAY_USERS_FILE=str(users_file),
            GATEWAY_SECRET=secret,
            GATEWAY_INGEST_SECRET=ingest_secret,
            GATEWAY_ADMIN_TOKEN=secrets.token_urlsafe(32),
        )
        env.update(extra_env or {})
        if redis:
            redis_proc, env["GATEWAY_REDIS_URL"] = start_redis(workdir)
            procs.append(redis_proc)
        log_path = log_path or workdir / "gateway.log"
        proc = _spawn_gateway(env, log_path, workers)
        procs.insert(0, proc)
        await _wait_ready(proc, host, port, 30, log_path)
        if workers > 1:
            await _wait_workers(host, port, env["GATEWAY_ADMIN_TOKEN"], workers, 60)
        redis_pid = procs[1].pid if redis else None
        yield Target(host, port, proc.pid, secret, ingest_secret, redis_pid)
    finally:
        for proc in procs:
            # A supervisor kills the workers that have not stopped after its own deadline.
            _stop(proc, 10 if workers == 1 else STOP_SECONDS + 10)
        shutil.rmtree(workdir, ignore_errors=True)
