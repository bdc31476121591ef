"""Is the process of a `running` stage run still there? Who runs it, and the rule that decides.

Each run records where it runs: the host name, the process id, and a start
token (on Linux the kernel's boot id and the process's start time in clock
ticks, from /proc), so that a pid reused by another process after a reboot or
a crash is not mistaken for the run. While the stage works, a heartbeat
thread stamps the run every HEARTBEAT_SECONDS.

The rule (`process_gone`):

- a run of this host is gone when no process has its pid, or the process
  with that pid has another start token; it is never judged by age, so a
  long load on this host is never abandoned while it runs;
- a run of another host (a fleet's other worker) cannot be asked: it is gone
  when its heartbeat (or, without one, its start) is older than STALE_AFTER.
  A run that was only cut off from the control store for that long and
  finishes later records its real outcome over `abandoned`.

Example::

    me = ProcessIdentity.current()
    process_gone(me.host, me.pid, me.start_token, heartbeat_at=None, started_at=now, now=now)  # False
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

HEARTBEAT_SECONDS = 60.0
STALE_AFTER = dt.timedelta(minutes=15)  # fifteen missed heartbeats


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return None


def start_token(pid: int) -> str | None:
    """'<boot id>:<start time in ticks>' of process `pid`, or None where /proc cannot tell (or no such pid)."""
    boot = _boot_id()
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 2 (the command) is in parentheses and may hold spaces: count fields after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        started = int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None
    return f"{boot or '?'}:{started}"


def this_host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    start_token: str | None

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(this_host(), pid, start_token(pid))


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def process_gone(
    host: str | None,
    pid: int | None,
    token: str | None,
    *,
    heartbeat_at: dt.datetime | None,
    started_at: dt.datetime,
    now: dt.datetime,
) -> bool:
    """True when the run's process is decidably gone (see the module docstring for the rule)."""
    if host == this_host() and pid is not None:
        if not _pid_exists(pid):
            return True
        if token is None:
            return False  # the pid exists and there is nothing to tell it apart: assume it is the run
        return start_token(pid) not in (None, token)
    last_sign = heartbeat_at or started_at
    return now - last_sign > STALE_AFTER


class Heartbeat:
    """Calls `beat()` every `every` seconds from a daemon thread until stopped; a failing beat is skipped."""

    def __init__(self, beat: Callable[[], None], every: float = HEARTBEAT_SECONDS):
        self.beat, self.every = beat, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ts24-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception:  # a busy or unreachable control store: the next beat tries again
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
