"""Real Redis topologies on loopback: a Sentinel-managed primary with a replica, and a cluster.

Both are Debian's redis-server (``--sentinel`` runs it as redis-sentinel;
``redis-cli --cluster create`` makes the cluster). Readiness is only
observable here (a server answering, a sentinel knowing its peers, the
cluster's slots covered), so it is polled, within a deadline.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import redis

from tests.support.servers import free_port

SERVICE = "gw"


def _exe(name: str) -> str:
    exe = shutil.which(name)
    assert exe, f"{name} is not installed (make test installs it)"
    return exe


def _until(ready: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {seconds} s")  # its redis.log says why


# Ports handed out here: free_port's socket is closed at once, so the same
# port could be handed out twice before any server binds it.
_handed_out: set[int] = set()


def _port(cluster_bus: bool) -> int:
    """A free port, not handed out before; with ``cluster_bus``, its bus port (+10000) free too."""
    while True:
        port = free_port()
        if port in _handed_out or (cluster_bus and port + 10000 > 65535):
            continue
        if cluster_bus:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
        _handed_out.add(port)
        return port


class Node:
    """One redis-server process (a data node or a sentinel) on a free loopback port."""

    def __init__(self, root: Path, args: list[str], config: str | None = None) -> None:
        self.port = _port(cluster_bus="--cluster-enabled" in args)
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.port}-", dir=root))
        self.args = args
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [_exe("redis-server")]
        if self.config is not None:
            conf = self.dir / "sentinel.conf"
            conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n{self.config}")
            argv += [str(conf), "--sentinel"]
        else:
            argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
            argv += ["--save", "", "--appendonly", "no", *self.args]
        argv += ["--logfile", str(self.dir / "redis.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _until(self.client().ping, f"redis on {self.port}")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, decode_responses=True)

    def until_subscribed(self, pattern: str, subscribers: int = 1, seconds: float = 10) -> None:
        """Until a shard channel matching ``pattern`` has ``subscribers`` subscribers here."""

        def subscribed() -> bool:
            with self.client() as client:
                channels = client.pubsub_shardchannels(pattern)
                counts = client.pubsub_shardnumsub(*channels) if channels else []
                return any(int(count) >= subscribers for _, count in counts)

        _until(subscribed, f"{subscribers} subscribers to {pattern} on {self.port}", seconds)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


class SentinelSetup:
    """A primary, one replica and three sentinels (quorum 2) watching them as ``SERVICE``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gw-sentinel-"))
        # Redis waits 5 s by default for more replicas before a full sync; here one is all there is.
        no_wait = ["--repl-diskless-sync-delay", "0"]
        self.primary = Node(self.root, no_wait)
        self.replica = Node(self.root, [*no_wait, "--replicaof", "127.0.0.1", str(self.primary.port)])
        watch = (
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        self.sentinels = [Node(self.root, [], config=watch) for _ in range(3)]

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{nodes}/{SERVICE}"

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        _until(lambda: self.replica.client().info("replication")["master_link_status"] == "up", "replica")
        for sentinel in self.sentinels:
            sentinel.start()

        def watched() -> bool:
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    if (
                        len(client.sentinel_slaves(SERVICE)) < 1
                        or len(client.sentinel_sentinels(SERVICE)) < 2
                    ):
                        return False
            return True

        # A failover needs every sentinel to know the replica and its peers.
        _until(watched, "sentinels")

    def primary_port(self) -> int:
        with self.sentinels[0].client() as client:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def cleanup(self) -> None:
        for node in (*self.sentinels, self.replica, self.primary):
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class ClusterSetup:
    """Three masters, no replicas, every slot covered; a fourth can be added and given slots."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gw-cluster-"))
        self.nodes = [self._node() for _ in range(3)]

    def _node(self) -> Node:
        return Node(self.root, ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            self._start(node)
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [_exe("redis-cli"), "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )

        def covered() -> bool:
            for node in self.nodes:
                with node.client() as client:
                    if client.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                        return False
            return True

        _until(covered, "cluster")

    @staticmethod
    def _start(node: Node) -> None:
        # Each node keeps its cluster state in its own directory.
        node.args += ["--cluster-config-file", str(node.dir / "nodes.conf")]
        node.start()

    def add_primary(self) -> Node:
        """A new primary, empty, known to every node (``redis-cli --cluster add-node``)."""
        node = self._node()
        self.nodes.append(node)
        self._start(node)
        subprocess.run(
            [
                _exe("redis-cli"),
                "--cluster",
                "add-node",
                f"127.0.0.1:{node.port}",
                f"127.0.0.1:{self.nodes[0].port}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        wanted = {n.port for n in self.nodes}

        def known() -> bool:
            for peer in self.nodes:
                with peer.client() as client:
                    nodes = client.execute_command("CLUSTER NODES")
                    if {int(address.split(":")[1].split("@")[0]) for address in nodes} != wanted:
                        return False
            # It serves (a migration's keys) once it saw every slot covered.
            with node.client() as client:
                return bool(client.execute_command("CLUSTER INFO").get("cluster_state") == "ok")

        _until(known, "new primary")
        return node

    def owner(self, slot: int) -> Node:
        port = self._owner_seen_by(self.nodes[0], slot)
        return next(n for n in self.nodes if n.port == port)

    def move_slot(self, slot: int, to: Node) -> None:
        """Move ``slot`` and its keys to ``to``, as ``redis-cli --cluster reshard`` moves each slot."""
        source = self.owner(slot)
        with source.client() as src, to.client() as dst:
            src_id, dst_id = src.execute_command("CLUSTER MYID"), dst.execute_command("CLUSTER MYID")
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
            # The new owner first, then the old: it never answers for the slot
            # before the new one knows it has it.
            dst.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
            src.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        for node in self.nodes:
            if node not in (source, to):
                with node.client() as client:
                    client.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        _until(lambda: all(self._owner_seen_by(n, slot) == to.port for n in self.nodes), "slot moved")

    @staticmethod
    def _owner_seen_by(node: Node, slot: int) -> int | None:
        with node.client() as client:
            for first, last, primary, *_ in client.execute_command("CLUSTER SLOTS"):
                if int(first) <= slot <= int(last):
                    return int(primary[1])
        return None

    def cleanup(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class _Topology(Protocol):
    def start(self) -> None: ...
    def cleanup(self) -> None: ...


TopologyT = TypeVar("TopologyT", bound=_Topology)


@contextlib.contextmanager
def running(setup: TopologyT) -> Iterator[TopologyT]:
    """``setup`` started, and cleaned up afterwards even when starting it failed half-way."""
    try:
        setup.start()
        yield setup
    finally:
        setup.cleanup()
