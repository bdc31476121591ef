"""Which failed task runs Prefect retries: only what may heal by itself.

An unreachable server, a lost connection or a lock not granted in time (a
lock timeout, a deadlock victim) is retried; a configuration error
(a refused login included), a failed verdict, a refused gate, a folder we may
not write, a bug or an interruption is not: running it again unchanged would
fail the same way. The classes are ts24_migrate.core.errors'.
"""

from __future__ import annotations

from ts24_migrate.core.errors import is_transient


def retry_if_transient(_task, _task_run, state) -> bool:
    """A Prefect `retry_condition_fn`."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the state's own exception, classified
        return is_transient(exc)
    return False
