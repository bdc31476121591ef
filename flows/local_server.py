"""A temporary local Prefect server for a flow run started by the CLI without PREFECT_API_URL.

Prefect would start one by itself, in the terminal's process group: a Ctrl-C
there stops the server too, and the flow engine, still running, then keeps
retrying it for minutes to record the run as crashed. This one starts with
SIGINT blocked (a blocked signal stays blocked in the child), so only the CLI
sees the Ctrl-C; the engine records the crash on a live server, and the CLI
stops the server when it is done, interrupted or not.

Example::

    with temporary_prefect_server():
        migrate_site(site_id="hn-01", inventory="sites.yaml")
"""

from __future__ import annotations

import inspect
import signal
import socket
from collections.abc import Iterator
from contextlib import closing, contextmanager

from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings
from prefect.utilities.asyncutils import run_coro_as_sync

from ts24_migrate.core.errors import UnreachableError

# A first start creates the server's database: Prefect's default of 20 s is too short on a busy host.
STARTUP_SECONDS = 120


class _ServerOutsideCtrlC(SubprocessASGIServer):
    def _run_uvicorn_command(self):
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return super()._run_uvicorn_command()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _send_pending_logs_and_events() -> None:
    """Before the server stops: Prefect's log and event workers would otherwise retry a dead server
    for a minute or more when the process exits."""
    try:
        drained = APILogWorker.instance().drain()
        if inspect.isawaitable(drained):
            await drained
    except RuntimeError:  # the log worker never started
        pass
    events_drained = EventsWorker.drain_all()
    if inspect.isawaitable(events_drained):
        await events_drained


@contextmanager
def temporary_prefect_server() -> Iterator[str]:
    """Start a local Prefect server, point Prefect at it, and stop it afterwards; yields its API URL."""
    # An explicit port: Prefect keeps one server object per port, and an earlier ephemeral one must not
    # be reused; registered as the default one too, so that Prefect itself starts no second server.
    server = _ServerOutsideCtrlC(_free_port())
    earlier_default = SubprocessASGIServer._instances.get(None)
    SubprocessASGIServer._instances[None] = server
    timeout = max(STARTUP_SECONDS, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    try:
        try:
            server.start(timeout=timeout)
        except RuntimeError as exc:  # Prefect's words for a server that did not come up
            raise UnreachableError(
                f"the temporary Prefect server did not start: {str(exc)[:300]}; "
                "set PREFECT_API_URL to use a running Prefect server"
            ) from exc
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                run_coro_as_sync(_send_pending_logs_and_events())
    finally:
        server.stop()
        if earlier_default is not None:
            SubprocessASGIServer._instances[None] = earlier_default
        else:
            SubprocessASGIServer._instances.pop(None, None)
