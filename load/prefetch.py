"""Run a producer generator one step ahead, in a thread of its own.

The load reads and transforms chunk N+1 (Python work, legacy database) while
chunk N is merged (mostly waiting on the target database, GIL released), so
the two overlap instead of adding up. At most `depth` finished items wait in
between, so memory stays bounded by a few chunks. An exception in the
producer is raised in the consumer; a consumer that stops early stops the
producer.

The consumer mostly waits on the database and then needs the GIL back for
a moment, while the producer holds it for Python work: while a prefetch runs,
the thread switch interval is short (load.interpreter).

Example::

    for chunk in prefetched(read_and_transform(), depth=1):
        merge(chunk)
"""

from __future__ import annotations

import enum
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Final, TypeVar

from .interpreter import short_switch_interval

T = TypeVar("T")


class _Done(enum.Enum):
    DONE = enum.auto()


_DONE: Final = _Done.DONE  # the producer's last item
_POLL_SECONDS = 0.2


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetched(items: Iterable[T], *, depth: int = 1) -> Iterator[T]:
    handoff: queue.Queue[T | _Failed | _Done] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: T | _Failed | _Done) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # the generator's own cleanup (its connections) runs in its thread

    with short_switch_interval():
        worker = threading.Thread(target=produce, name="ts24-load-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = handoff.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            stop.set()
            worker.join()
