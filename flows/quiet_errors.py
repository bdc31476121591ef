"""Keep tracebacks of *expected* failures out of Prefect's logs.

A Ts24Error (a failed verdict, a bad inventory, an unreachable server) is the
user's to act on and already says so in one line; Prefect's engine would log
it with a full traceback. This filter keeps the line and drops the traceback;
any other exception (a bug) keeps its traceback.
"""

from __future__ import annotations

import logging

from ts24_migrate.core.errors import Ts24Error

ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.task_engine")


class DropTracebackOfUserErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], Ts24Error):
            record.exc_info = None
            record.exc_text = None
        return True


def install() -> None:
    for name in ENGINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropTracebackOfUserErrors) for f in logger.filters):
            logger.addFilter(DropTracebackOfUserErrors())
