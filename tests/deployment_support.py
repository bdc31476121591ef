"""What the deployment test needs: real processes (a Prefect server, workers), stopped by their
process groups whatever happens, the Prefect REST API, and run windows from the control store.

Every process is started in a session of its own (its process group id is its pid), so stopping
it stops what it started in its group; a process worker starts each flow run in a session of its
own too, so `kill_worker` kills the worker's group and each flow-run child's group.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's prefect and ts24-migrate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any Prefect setting (ours are given), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "GX_ANALYTICS_ENABLED": "false"})
    env.update(extra)
    return env


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log.name}) ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Processes:
    """The processes a test started; `stop_all` ends each by its process group, SIGKILL if it lingers."""

    log_dir: Path
    started: list[Started] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Started:
        log = self.log_dir / f"{name}.log"
        handle = open(log, "ab")
        try:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            handle.close()
        started = Started(name, process, log)
        self.started.append(started)
        return started

    def logs(self) -> str:
        return "\n".join(s.tail() for s in self.started)

    def stop_all(self) -> None:
        for started in reversed(self.started):
            stop_group(started.pid, children=children_of(started.pid))
            try:
                started.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")"
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return (Path("/proc") / str(pid) / "stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_group(pid: int, *, children: Iterable[int] = (), grace: float = 8.0) -> None:
    """SIGTERM the process group `pid` and its children's own groups, SIGKILL after `grace` seconds."""
    groups = [pid, *children]
    for group in groups:
        _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(g) for g in groups):
        time.sleep(0.2)
    for group in groups:
        _signal_group(group, signal.SIGKILL)


def kill_now(pid: int) -> list[int]:
    """SIGKILL the process group `pid` and the group of each of its children (a worker and the flow
    runs it started, each in a session of its own); returns the children killed."""
    children = children_of(pid)
    _signal_group(pid, signal.SIGKILL)
    for child in children:
        _signal_group(child, signal.SIGKILL)
    return children


def flow_run_of(pid: int) -> str | None:
    """The Prefect flow run a process runs (its PREFECT__FLOW_RUN_ID), if any."""
    try:
        environ = (Path("/proc") / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(b"PREFECT__FLOW_RUN_ID="):
            return item.split(b"=", 1)[1].decode()
    return None


def run_cli(argv: list[str], env: dict[str, str], cwd: Path, *, timeout: float = 180) -> str:
    completed = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, start_new_session=True
    )
    assert completed.returncode == 0, (
        f"{' '.join(argv)} exited {completed.returncode}:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )
    return completed.stdout


def wait_for(
    what: str,
    done: Callable[[], Any],
    *,
    timeout: float,
    every: float = 1.0,
    on_timeout: Callable[[], str] = lambda: "",
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = done()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{on_timeout()}")
        time.sleep(every)


class PrefectApi:
    """The few REST calls the test makes (the test's own process has no Prefect settings to trust:
    the suite's ephemeral server may be active in it)."""

    TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

    def __init__(self, url: str):
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=30)

    def healthy(self) -> bool:
        try:
            return self.client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def deployment_id(self, flow: str, name: str) -> str:
        response = self.client.get(f"/deployments/name/{flow}/{name}")
        response.raise_for_status()
        return response.json()["id"]

    def run_deployment(self, flow: str, name: str, parameters: dict[str, Any]) -> str:
        response = self.client.post(
            f"/deployments/{self.deployment_id(flow, name)}/create_flow_run", json={"parameters": parameters}
        )
        response.raise_for_status()
        return response.json()["id"]

    def flow_run(self, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"/flow_runs/{run_id}")
        response.raise_for_status()
        return response.json()

    def flow_runs(self, flow: str, name: str) -> list[dict[str, Any]]:
        response = self.client.post(
            "/flow_runs/filter", json={"deployments": {"id": {"any_": [self.deployment_id(flow, name)]}}, "limit": 200}
        )
        response.raise_for_status()
        return response.json()

    def artifacts(self, key: str) -> list[dict[str, Any]]:
        response = self.client.post("/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}})
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.client.close()


def state_of(run: dict[str, Any]) -> str:
    return (run.get("state") or {}).get("type") or "?"


# -- run windows: when a site held its slots, from the control store -------------------------


@dataclass(frozen=True)
class Window:
    site_id: str
    start: dt.datetime
    end: dt.datetime


def attempts(runs: list) -> list[list]:
    """A site's stage runs split into migrate-site attempts (each begins with an assess)."""
    found: list[list] = []
    for run in sorted(runs, key=lambda r: r.started_at):
        if run.stage == "assess" or not found:
            found.append([])
        found[-1].append(run)
    return found


def legacy_window(site_id: str, attempt: list, cut_at: dt.datetime) -> Window:
    """From the first stage's start to the last stage's end (`cut_at` for a killed run): the run held
    its legacy server's slot at least that long."""
    ends = [r.finished_at or cut_at for r in attempt]
    return Window(site_id, attempt[0].started_at, max(ends))


def target_window(site_id: str, attempt: list, cut_at: dt.datetime) -> Window | None:
    """From the load's start to the validation's end: the target's slot was held at least that long."""
    at_target = [r for r in attempt if r.stage in ("load", "validate")]
    if not at_target:
        return None
    return Window(site_id, at_target[0].started_at, max(r.finished_at or cut_at for r in at_target))


def most_at_once(windows: Iterable[Window]) -> int:
    """The largest number of windows open at one moment (a window ending as another starts: not both)."""
    windows = list(windows)
    events = sorted([(w.start, 1) for w in windows] + [(w.end, -1) for w in windows], key=lambda e: (e[0], e[1]))
    open_now = highest = 0
    for _, step in events:
        open_now += step
        highest = max(highest, open_now)
    return highest
