"""``gateway serve --workers N``: a supervisor and N worker processes sharing the listening ports.

Each worker is a whole gateway (``gateway serve --worker K``): its own event
loop, Redis connections and instance id in the ownership scheme. It binds
the configured HTTP and SIP ports itself with SO_REUSEPORT, so the kernel
spreads connections and datagrams over the workers; why that and not
sockets bound once here: docs/operations.md#workers. The supervisor binds
nothing and serves nothing: it starts the workers, forwards the stop
signal, and starts a worker again when it dies.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger("gateway.workers")

# A worker that lived this long was healthy: its death starts the back-off over.
STABLE_SECONDS = 30.0
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0
# Deaths in a row of one worker, each after the first within STABLE_SECONDS of its start: give up.
GIVE_UP_AFTER = 5
# How long the workers have to stop after the signal (their graceful shutdown
# takes 5 s at most, the SIP unsubscribes included) before they are killed.
STOP_SECONDS = 30.0
# How often a worker that cannot watch its supervisor's pidfd looks at its parent.
POLL_SECONDS = 1.0

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Refused(Exception):
    """Why these workers cannot start, in one line."""


@dataclass
class Backoff:
    """When to start a dead worker again, or that it is no use (sans-I/O)."""

    quick_deaths: int = 0

    def after_death(self, lived_seconds: float) -> float | None:
        """The delay before the next start; ``None``: it keeps dying, give up."""
        if lived_seconds >= STABLE_SECONDS:
            self.quick_deaths = 0
        self.quick_deaths += 1
        if self.quick_deaths >= GIVE_UP_AFTER:
            return None
        return float(min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (self.quick_deaths - 1)))


def check_ports(listeners: Iterable[tuple[str, str, int]]) -> None:
    """Refuse the start when a port is 0 or taken: ``(kind, host, port)``, kind ``tcp`` or ``udp``.

    Workers bind with SO_REUSEPORT, which would silently share a port with
    another gateway of the same user still running on it; a plain bind
    first tells that apart. Port 0 would give each worker a port of its own.
    """
    for kind, host, port in listeners:
        if port == 0:
            raise Refused(f"--workers: {kind} {host}:0 would be a different port in each worker; set one")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM) as probe:
            if kind == "tcp":
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise Refused(f"--workers: {kind} {host}:{port}: {reason}") from None


def shared_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT, for one worker's HTTP server to listen on."""
    return _tcp_socket(host, port, shared=True)


def own_socket(host: str, port: int) -> socket.socket:
    """A TCP socket for one worker alone."""
    return _tcp_socket(host, port, shared=False)


def _tcp_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def end_with(supervisor: int) -> None:
    """Stop this worker when its supervisor dies, even by SIGKILL: SIGTERM at once, and a
    hard exit ``STOP_SECONDS`` later if its graceful stop has not ended it by then.

    Without it a killed supervisor would leave its workers serving, unwatched.
    """
    try:
        # Readable once the supervisor has exited (Linux 5.3).
        watch: int | None = os.pidfd_open(supervisor)
    except OSError:
        # Refused (an older kernel, a container's seccomp filter): the parent
        # is polled instead. Not a sign that the supervisor is gone.
        watch = None
    if os.getppid() != supervisor:  # it is already gone
        os.kill(os.getpid(), signal.SIGTERM)
        return
    threading.Thread(
        target=_end_after, args=(watch, supervisor), name="supervisor-watch", daemon=True
    ).start()


def _end_after(watch: int | None, supervisor: int) -> None:
    if watch is not None:
        select.select([watch], [], [])
    else:
        # An orphan is given another parent: that is the supervisor's death.
        while os.getppid() == supervisor:
            time.sleep(POLL_SECONDS)
    log.warning("the supervisor is gone: stopping")
    os.kill(os.getpid(), signal.SIGTERM)
    # The graceful stop's deadline, as the supervisor would have kept it.
    time.sleep(STOP_SECONDS)
    log.error("not stopped %.0f s after the supervisor went: exiting", STOP_SECONDS)
    os._exit(1)


@dataclass
class _Worker:
    number: int
    backoff: Backoff = field(default_factory=Backoff)
    pid: int | None = None
    started: float = 0.0
    due: float | None = None  # when to start it again


class Supervisor:
    """Starts ``count`` workers running ``python -m gateway <argv> --worker K``, and keeps them running."""

    def __init__(self, argv: list[str], count: int) -> None:
        self.argv = argv
        self.workers = [_Worker(number) for number in range(1, count + 1)]

    def run(self) -> int:
        """Until SIGTERM or SIGINT (0) or a worker that keeps dying (1)."""
        watched = {signal.SIGCHLD, *_STOP_SIGNALS}
        # Taken as they come by sigtimedwait, never by a handler: nothing runs in between.
        signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        if not all([self._start(worker) for worker in self.workers]):
            return self._give_up()
        while True:
            due = [w.due for w in self.workers if w.due is not None]
            timeout = max(0.0, min(due) - time.monotonic()) if due else 3600.0
            info = signal.sigtimedwait(watched, timeout)
            if info is not None and info.si_signo in _STOP_SIGNALS:
                log.info("%s: stopping %d workers", signal.Signals(info.si_signo).name, len(self.workers))
                return self._stop()
            if not self._reap():
                return self._give_up()
            now = time.monotonic()
            ready = [w for w in self.workers if w.due is not None and w.due <= now]
            if not all([self._start(worker) for worker in ready]):
                return self._give_up()

    def _give_up(self) -> int:
        log.error("a worker keeps dying: stopping the others")
        self._stop()
        return 1

    def _start(self, worker: _Worker) -> bool:
        """Start it, or plan another try; False once it keeps failing to start."""
        argv = [sys.executable, "-m", "gateway", *self.argv]
        argv += ["--worker", str(worker.number), "--supervisor", str(os.getpid())]
        try:
            # The worker starts with no signal blocked: it takes SIGTERM its own way (uvicorn's).
            worker.pid = os.posix_spawn(sys.executable, argv, os.environ, setsigmask=())
        except OSError as exc:
            # Out of processes or memory, the interpreter gone in an upgrade:
            # a death at birth, with the same back-off, not a traceback that
            # leaves the running workers without their supervisor.
            worker.pid = None
            delay = worker.backoff.after_death(0.0)
            if delay is None:
                log.error(
                    "worker %d could not be started (%s), %d times in a row",
                    worker.number,
                    exc,
                    GIVE_UP_AFTER,
                )
                return False
            log.warning(
                "worker %d could not be started (%s); trying again in %.1f s", worker.number, exc, delay
            )
            worker.due = time.monotonic() + delay
            return True
        worker.started, worker.due = time.monotonic(), None
        log.info("worker %d started (pid %d)", worker.number, worker.pid)
        return True

    def _reap(self) -> bool:
        """Collect the workers that ended and plan their restart; False once one keeps dying."""
        healthy = True
        for worker in self.workers:
            if worker.pid is None:
                continue
            pid, status = os.waitpid(worker.pid, os.WNOHANG)
            if pid == 0:
                continue
            lived = time.monotonic() - worker.started
            worker.pid = None
            delay = worker.backoff.after_death(lived)
            how = _describe(status)
            if delay is None:
                log.error("worker %d (pid %d) %s, %d times in a row", worker.number, pid, how, GIVE_UP_AFTER)
                healthy = False
                continue
            log.warning(
                "worker %d (pid %d) %s after %.1f s; starting it again in %.1f s",
                *(worker.number, pid, how, lived, delay),
            )
            worker.due = time.monotonic() + delay
        return healthy

    def _stop(self) -> int:
        """SIGTERM to every worker, then wait for them; a second signal or the deadline kills them."""
        for worker in self.workers:
            worker.due = None
            if worker.pid is not None:
                # SIGTERM whatever came: a terminal's Ctrl-C has already sent SIGINT to the
                # whole process group, and a second SIGINT would make uvicorn drop its graceful stop.
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        watched = {signal.SIGCHLD, *_STOP_SIGNALS}
        killed = False
        while any(w.pid is not None for w in self.workers):
            info = signal.sigtimedwait(watched, max(0.0, deadline - time.monotonic()))
            for worker in self.workers:
                if worker.pid is not None and os.waitpid(worker.pid, os.WNOHANG)[0] != 0:
                    worker.pid = None
            left = [str(w.pid) for w in self.workers if w.pid is not None]
            if not left:
                break
            if killed and info is None:
                # Still there STOP_SECONDS after SIGKILL (uninterruptible sleep):
                # waiting on would spin, the deadline being past.
                log.error("workers %s not gone after SIGKILL: leaving them", ", ".join(left))
                return 1
            if not killed and (info is None or info.si_signo in _STOP_SIGNALS):
                log.warning("workers not stopped: killing them")
                for worker in self.workers:
                    if worker.pid is not None:
                        os.kill(worker.pid, signal.SIGKILL)
                killed, deadline = True, time.monotonic() + STOP_SECONDS
        log.info("all workers stopped")
        return 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:  # a real-time signal
            name = f"signal {number}"
        return f"was killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
