"""Ctrl-C (SIGINT) ends a command with exit code 130, promptly, and never hangs.

The first SIGINT raises KeyboardInterrupt in the main thread, as Python does:
the work stops where it is, the open transaction rolls back, the stage run is
recorded as failed (stage_runs), the load's prefetch thread stops after its
current chunk, and the next run resumes from the last durable checkpoint (the
guarantee every stage already gives after a kill). The CLI reports it as
`Interrupted`, exit code 130.

Stopping must not hang: a watchdog ends the process with 130 when stopping
takes longer than GRACE_SECONDS (e.g. a driver call that does not return, or
a flow engine that would keep retrying a Prefect server the same Ctrl-C
stopped), and a second Ctrl-C ends it at once. Ending the process this way is
no worse than the kill every stage is built to survive.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ts24_migrate.core.errors import ExitCode

# Seconds allowed between the first Ctrl-C and the end of the process.
GRACE_SECONDS = float(os.environ.get("TS24_INTERRUPT_GRACE_SECONDS", "20"))


def _end_now(reason: str) -> None:
    try:
        os.write(2, f"interrupted: {reason}; exiting now (run the same command again to resume)\n".encode())
    finally:
        os._exit(ExitCode.INTERRUPTED)


def _watchdog() -> None:
    threading.Event().wait(GRACE_SECONDS)
    _end_now(f"stopping took longer than {GRACE_SECONDS:g} s")


class _LibraryLog(logging.Handler):
    """Where the database library's own warnings go during a command: one line, never a traceback.

    Without a handler, Python prints them with their traceback. After a Ctrl-C, SQLAlchemy closes the
    connection the interrupted fetch was using and then logs "Error closing cursor" about it: that is
    the interruption itself, already reported as exit 130, so it is dropped."""

    def __init__(self, handler: _Handler) -> None:
        super().__init__(level=logging.WARNING)
        self.handler = handler

    def emit(self, record: logging.LogRecord) -> None:
        if self.handler.interrupted:
            return
        try:
            os.write(2, f"warning ({record.name}): {record.getMessage()}\n".encode(errors="replace"))
        except OSError:
            pass


class _Handler:
    def __init__(self) -> None:
        self.interrupted = False

    def __call__(self, _signum, _frame) -> None:
        if self.interrupted:
            _end_now("Ctrl-C again")
        self.interrupted = True
        # A daemon thread: it also covers the interpreter's own shutdown (atexit hooks, thread joins).
        threading.Thread(target=_watchdog, name="ts24-interrupt-watchdog", daemon=True).start()
        raise KeyboardInterrupt


_current: _Handler | None = None  # the handler of the command running in this process


def ctrl_c_received() -> bool:
    """Whether this command was interrupted. A Ctrl-C that lands inside a database driver's callback
    (e.g. an SQLite function of ours) reaches the command as the driver's own error, not as
    KeyboardInterrupt: the command is still interrupted (exit 130), not failed."""
    return _current is not None and _current.interrupted


@contextmanager
def interrupt_handling() -> Iterator[None]:
    """Install the Ctrl-C handling for one command (only the main thread may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _current
    handler = _current = _Handler()
    library_log, library_logger = _LibraryLog(handler), logging.getLogger("sqlalchemy")
    library_logger.addHandler(library_log)
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        library_logger.removeHandler(library_log)
        _current = None
