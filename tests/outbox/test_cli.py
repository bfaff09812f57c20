"""``gateway outbox``: what an operator sees of the jobs waiting for HubSpot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gateway.outbox.jobs import Job
from gateway.outbox.sqlite import SqliteStore


def gateway(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


async def test_the_outbox_command_shows_the_depth_and_the_dead_letters(tmp_path: Path) -> None:
    outbox_file = tmp_path / "outbox.sqlite3"
    store = SqliteStore(outbox_file)
    now = time.time()
    await store.put(Job("log:u1:sip:c1", "log", {}, now, now))
    await store.put(Job("log:u1:sip:c2", "log", {}, now, now + 3600))
    taken = await store.take(now, 60, "t")
    assert taken is not None
    await store.bury(taken, "rejected: 400 bad property", now)
    await store.close()
    config = tmp_path / "gateway.toml"
    config.write_text(f'[hubspot]\noutbox_file = "{outbox_file}"\n')
    shown = gateway("outbox", env={"GATEWAY_CONFIG": str(config)})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("waiting or running: 1, oldest ")
    assert lines[0].endswith("; dead letters: 1")
    assert lines[1] == "dead: log:u1:sip:c1 after 1 attempts: rejected: 400 bad property"


def test_the_outbox_command_without_a_hubspot_table_says_there_is_none(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("")
    shown = gateway("outbox", env={"GATEWAY_CONFIG": str(config)})
    assert shown.returncode == 2
    assert "no [hubspot] table" in shown.stderr
